//! Handlers of company events. Nothing lists them: `#[handler]` registers
//! each, and the bus finds them at start-up.

use events_core::{handler, Event, Handler, HandlerResult};

use crate::domain::events::CompanyCreated;

/// Reacts to company creation (the seed's `CompanyCreatedHandler`).
#[handler]
pub async fn log_company_created(event: &Event<CompanyCreated>) {
    tracing::info!(
        company_id = %event.company_id,
        event_id = %event.id(),
        "company created"
    );
}

/// Creates the default settings of a new company.
#[derive(Debug, Default)]
pub struct CreateDefaultSettings;

#[handler]
impl Handler<CompanyCreated> for CreateDefaultSettings {
    async fn handle(&self, event: &Event<CompanyCreated>) -> HandlerResult {
        tracing::debug!(company_id = %event.company_id, "default settings created");
        Ok(())
    }
}
