//! Start-up: the seed's `lifespan` (the bus) and its `CompanyFactory` (the use case on what the environment offers).

use std::sync::Arc;
use std::time::{Duration, Instant};

use events_core::{BusError, EventBus};
use events_outbox::{OutboxError, Relay, RelayOptions};

use crate::application::{CreateCompanyUseCase, RepositoryError};
use crate::infrastructure::postgres::PostgresCompanyRepository;
use crate::infrastructure::repository::InMemoryCompanyRepository;

/// Builds the bus from the environment (`EVENT_BUS_*`), with every handler
/// linked into the program, and the publisher `EVENT_BUS_MODE` asks for.
///
/// The `company-notifications` crate's handlers are found because the
/// program links it (`use company_notifications as _;` in `main`).
pub async fn build_event_bus() -> Result<EventBus, BusError> {
    EventBus::from_env().await
}

/// The company service's wiring: the use case, and, on PostgreSQL, the
/// repository and the outbox relay publishing what it commits.
pub struct CompanyService {
    /// The use case, wired to the repository.
    pub use_case: CreateCompanyUseCase,
    postgres: Option<(PostgresCompanyRepository, Relay)>,
}

/// Start-up failed.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The database could not be reached or migrated.
    #[error(transparent)]
    Repository(#[from] RepositoryError),
    /// The outbox failed.
    #[error(transparent)]
    Outbox(#[from] OutboxError),
}

/// The seed's `CompanyFactory`: with a `database_url` (`DATABASE_URL`),
/// the companies live in PostgreSQL (a `companies` table, created by the
/// example's migration, and the outbox's tables, created by
/// `events_outbox::migrate`), the use case saves each company and records
/// its events in one transaction, and an outbox relay hands them to `bus`
/// after the commit. Without one, the embedded default: an in-memory
/// repository, and the use case publishes through `bus` after saving
/// (its failover store keeps what cannot be delivered).
///
/// # Errors
///
/// [`StartupError`] when the database cannot be reached or migrated.
pub async fn company_service(
    bus: &EventBus,
    database_url: Option<&str>,
) -> Result<CompanyService, StartupError> {
    let Some(url) = database_url else {
        return Ok(CompanyService {
            use_case: CreateCompanyUseCase::new(
                Arc::new(InMemoryCompanyRepository::default()),
                bus.clone(),
            ),
            postgres: None,
        });
    };
    let repository = PostgresCompanyRepository::connect(url).await?;
    repository.migrate().await?;
    let relay = Relay::spawn(
        repository.pool().clone(),
        bus.clone(),
        RelayOptions::default(),
    );
    Ok(CompanyService {
        use_case: CreateCompanyUseCase::with_outbox(Arc::new(repository.clone())),
        postgres: Some((repository, relay)),
    })
}

impl CompanyService {
    /// The PostgreSQL repository, when the service runs on one.
    pub fn postgres(&self) -> Option<&PostgresCompanyRepository> {
        self.postgres.as_ref().map(|(repository, _)| repository)
    }

    /// Waits until the outbox holds nothing waiting (the relay handed
    /// everything committed to the bus), at most `timeout`; at once
    /// without PostgreSQL. Returns whether it emptied.
    ///
    /// # Errors
    ///
    /// When the outbox cannot be read.
    pub async fn wait_relayed(&self, timeout: Duration) -> Result<bool, OutboxError> {
        let Some((repository, _)) = &self.postgres else {
            return Ok(true);
        };
        let deadline = Instant::now() + timeout;
        loop {
            if events_outbox::stats(repository.pool()).await?.pending == 0 {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops the relay (it finishes the round under way).
    ///
    /// # Errors
    ///
    /// When the relay's task failed.
    pub async fn shutdown(self) -> Result<(), OutboxError> {
        match self.postgres {
            Some((_, relay)) => relay.stop().await,
            None => Ok(()),
        }
    }
}

/// [`build_event_bus`] with the variables read through `lookup` instead of
/// the process environment (what the start-up tests pass).
pub async fn build_event_bus_from(
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<EventBus, BusError> {
    EventBus::from_lookup(lookup).await
}
