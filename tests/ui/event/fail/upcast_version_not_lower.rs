// The source of an upcaster has a lower version: not the same, not higher.
use events_core::DomainEvent;

#[derive(DomainEvent)]
#[event(company = "acme", service = "crm", version = 2, resource = "company", action = "created")]
pub struct CompanyCreatedV2;

#[derive(DomainEvent)]
#[event(company = "acme", service = "crm", version = 2, resource = "company", action = "renamed")]
pub struct CompanyRenamedV2;

#[derive(DomainEvent)]
#[event(company = "acme", service = "crm", version = 2, resource = "company", action = "renamed", upcast_from = CompanyRenamedV2)]
pub struct SameVersion;

#[derive(DomainEvent)]
#[event(company = "acme", service = "crm", version = 1, resource = "company", action = "created", upcast_from = CompanyCreatedV2)]
pub struct CompanyCreatedV1;

impl From<CompanyRenamedV2> for SameVersion {
    fn from(_: CompanyRenamedV2) -> Self {
        SameVersion
    }
}
impl From<CompanyCreatedV2> for CompanyCreatedV1 {
    fn from(_: CompanyCreatedV2) -> Self {
        CompanyCreatedV1
    }
}

fn main() {}
