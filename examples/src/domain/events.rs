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

/// Version 2 of [`CompanyCreated`]: the name is the company's legal name
/// and every company has a plan. Changing what a field means, or adding a
/// field every reader needs, is a new version (see "Changing an event" in
/// the README); `upcast_from` makes handlers of v2 receive the v1 events
/// that producers still publish, converted by the `From` impl below, with
/// their original id and `occurred_on`.
#[derive(DomainEvent, Debug, Clone, PartialEq)]
#[event(
    company = "testclean",
    service = "api",
    version = 2,
    resource = "company",
    action = "created",
    upcast_from = CompanyCreated
)]
pub struct CompanyCreatedV2 {
    /// The new company's id.
    pub company_id: Uuid,
    /// Its legal name (v1's `company_name`).
    pub legal_name: String,
    /// Its country.
    pub country_id: Uuid,
    /// Its plan: v1 companies are on `free`.
    pub plan: String,
}

/// The upcaster v1 → v2, plain Rust.
impl From<CompanyCreated> for CompanyCreatedV2 {
    fn from(v1: CompanyCreated) -> Self {
        CompanyCreatedV2 {
            company_id: v1.company_id,
            legal_name: v1.company_name,
            country_id: v1.country_id,
            plan: "free".to_owned(),
        }
    }
}

/// Version 3 of [`CompanyCreated`]: a plan has a number of seats. Its
/// chain is v1 → v2 → v3: a handler of v3 receives v1 events upcast
/// through both `From` impls, and v2 events through the last one.
#[derive(DomainEvent, Debug, Clone, PartialEq)]
#[event(
    company = "testclean",
    service = "api",
    version = 3,
    resource = "company",
    action = "created",
    upcast_from = CompanyCreatedV2
)]
pub struct CompanyCreatedV3 {
    /// The new company's id.
    pub company_id: Uuid,
    /// Its legal name.
    pub legal_name: String,
    /// Its country.
    pub country_id: Uuid,
    /// Its plan.
    pub plan: String,
    /// The seats of its plan: one on `free`, five on any other.
    pub seats: u32,
}

/// The upcaster v2 → v3.
impl From<CompanyCreatedV2> for CompanyCreatedV3 {
    fn from(v2: CompanyCreatedV2) -> Self {
        CompanyCreatedV3 {
            seats: if v2.plan == "free" { 1 } else { 5 },
            company_id: v2.company_id,
            legal_name: v2.legal_name,
            country_id: v2.country_id,
            plan: v2.plan,
        }
    }
}
