//! The application layer: use cases.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use events_core::{BusError, EventBus, PublishOutcome};
use uuid::Uuid;

use crate::domain::aggregates::CompanyAggregate;

/// Input of [`CreateCompanyUseCase`].
#[derive(Debug, Clone)]
pub struct CreateCompanyDto {
    /// The name.
    pub name: String,
    /// The country.
    pub country_id: Uuid,
}

/// Output of [`CreateCompanyUseCase`].
#[derive(Debug, Clone)]
pub struct CompanyDto {
    /// The id.
    pub id: Uuid,
    /// The name.
    pub name: String,
    /// What publishing did, one entry per event (empty with the outbox:
    /// the relay publishes after the commit).
    pub published: Vec<PublishOutcome>,
    /// How many events were written to the outbox with the company (0
    /// without the outbox).
    pub recorded_in_outbox: usize,
}

/// Persistence of companies (a port; the adapter is in infrastructure).
pub trait CompanyRepository: Send + Sync {
    /// Saves the aggregate.
    fn save(&self, company: &CompanyAggregate) -> Result<(), RepositoryError>;
    /// Finds one by id.
    fn find(&self, id: Uuid) -> Option<CompanyAggregate>;
}

/// Persistence of companies together with the events they recorded, in one
/// transaction (a port; the PostgreSQL adapter, with the outbox, is in
/// infrastructure).
pub trait TransactionalCompanyRepository: Send + Sync {
    /// Saves the company and the events it recorded, atomically: both or
    /// neither. Empties the aggregate's recorder once committed, so the
    /// events cannot also be published directly; returns how many there
    /// were.
    fn save_with_events<'a>(
        &'a self,
        company: &'a mut CompanyAggregate,
    ) -> Pin<Box<dyn Future<Output = Result<usize, RepositoryError>> + Send + 'a>>;
}

/// The repository failed.
#[derive(Debug, thiserror::Error)]
#[error("repository error: {0}")]
pub struct RepositoryError(pub String);

/// The use case failed.
#[derive(Debug, thiserror::Error)]
pub enum CreateCompanyError {
    /// Saving failed: nothing was published.
    #[error(transparent)]
    Repository(#[from] RepositoryError),
    /// Saved, but the events were neither delivered nor stored.
    #[error(transparent)]
    Bus(#[from] BusError),
}

/// Creates a company, saves it, then publishes its events.
pub struct CreateCompanyUseCase {
    persistence: Persistence,
}

/// Where the use case saves, and how its events leave.
enum Persistence {
    /// Save, then publish through the bus (its failover store catches what
    /// the bus cannot deliver).
    Publish {
        repository: Arc<dyn CompanyRepository>,
        event_bus: EventBus,
    },
    /// Save and record the events in one PostgreSQL transaction (the
    /// outbox); the relay publishes them after the commit.
    Outbox(Arc<dyn TransactionalCompanyRepository>),
}

impl CreateCompanyUseCase {
    /// A use case with its dependencies (the seed's factory).
    pub fn new(repository: Arc<dyn CompanyRepository>, event_bus: EventBus) -> Self {
        CreateCompanyUseCase {
            persistence: Persistence::Publish {
                repository,
                event_bus,
            },
        }
    }

    /// A use case on PostgreSQL: the company and its events are saved in one
    /// transaction, the events into the outbox (`events-outbox`), and an
    /// outbox relay publishes them once committed. A failed save records
    /// nothing and publishes nothing, ever.
    /// The repository is `events_examples::infrastructure::postgres::PostgresCompanyRepository`.
    pub fn with_outbox(repository: Arc<dyn TransactionalCompanyRepository>) -> Self {
        CreateCompanyUseCase {
            persistence: Persistence::Outbox(repository),
        }
    }

    /// Runs it: publish only after the save succeeded; the aggregate's
    /// events are cleared only once published (or, with the outbox, once
    /// committed with the company).
    pub async fn execute(&self, dto: CreateCompanyDto) -> Result<CompanyDto, CreateCompanyError> {
        let mut company = CompanyAggregate::create(&dto.name, dto.country_id);
        match &self.persistence {
            Persistence::Publish {
                repository,
                event_bus,
            } => {
                repository.save(&company)?;
                let outcome = event_bus.publish_recorded(company.events_mut()).await?;
                Ok(CompanyDto {
                    id: company.id,
                    name: company.name,
                    published: outcome.events,
                    recorded_in_outbox: 0,
                })
            }
            Persistence::Outbox(repository) => {
                let recorded = repository.save_with_events(&mut company).await?;
                Ok(CompanyDto {
                    id: company.id,
                    name: company.name,
                    published: Vec::new(),
                    recorded_in_outbox: recorded,
                })
            }
        }
    }
}
