//! Domain events.

use events_core::DomainEvent;
use uuid::Uuid;

/// Event triggered when a company is created.
#[derive(DomainEvent, Debug, Clone, PartialEq)]
#[event(
    company = "testclean",
    service = "api",
    version = 1,
    resource = "company",
    action = "created"
)]
pub struct CompanyCreated {
    /// The new company's id.
    pub company_id: Uuid,
    /// Its name.
    pub company_name: String,
    /// Its country.
    pub country_id: Uuid,
}
