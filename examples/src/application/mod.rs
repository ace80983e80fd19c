//! The application layer: use cases.

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
    /// What publishing did, one entry per event.
    pub published: Vec<PublishOutcome>,
}

/// Persistence of companies (a port; the adapter is in infrastructure).
pub trait CompanyRepository: Send + Sync {
    /// Saves the aggregate.
    fn save(&self, company: &CompanyAggregate) -> Result<(), RepositoryError>;
    /// Finds one by id.
    fn find(&self, id: Uuid) -> Option<CompanyAggregate>;
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
    repository: Arc<dyn CompanyRepository>,
    event_bus: EventBus,
}

impl CreateCompanyUseCase {
    /// A use case with its dependencies (the seed's factory).
    pub fn new(repository: Arc<dyn CompanyRepository>, event_bus: EventBus) -> Self {
        CreateCompanyUseCase {
            repository,
            event_bus,
        }
    }

    /// Runs it: publish only after the save succeeded; the aggregate's
    /// events are cleared only once published.
    pub async fn execute(&self, dto: CreateCompanyDto) -> Result<CompanyDto, CreateCompanyError> {
        let mut company = CompanyAggregate::create(&dto.name, dto.country_id);
        self.repository.save(&company)?;
        let outcome = self
            .event_bus
            .publish_recorded(company.events_mut())
            .await?;
        Ok(CompanyDto {
            id: company.id,
            name: company.name,
            published: outcome.events,
        })
    }
}
