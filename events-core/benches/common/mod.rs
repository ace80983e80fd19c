//! The seed's event, shared by the benchmarks.

use events_core::DomainEvent;
use uuid::Uuid;

/// The seed's `CompanyCreated`.
#[derive(DomainEvent, Debug, Clone, PartialEq)]
#[event(
    company = "testclean",
    service = "api",
    version = 1,
    resource = "company",
    action = "created"
)]
pub struct CompanyCreated {
    pub company_id: Uuid,
    pub company_name: String,
    pub country_id: Uuid,
}

impl CompanyCreated {
    /// A sample with fresh ids.
    pub fn sample() -> Self {
        CompanyCreated {
            company_id: Uuid::new_v4(),
            company_name: "Test Company".to_owned(),
            country_id: Uuid::new_v4(),
        }
    }
}
