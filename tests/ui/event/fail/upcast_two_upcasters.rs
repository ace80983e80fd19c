// One older version is upcast into exactly one newer type: v3 upcasts from
// v2, not from v1 as v2 does.
use events_core::DomainEvent;

#[derive(DomainEvent)]
#[event(company = "acme", service = "crm", version = 1, resource = "company", action = "created")]
pub struct CompanyCreatedV1;

#[derive(DomainEvent)]
#[event(company = "acme", service = "crm", version = 2, resource = "company", action = "created", upcast_from = CompanyCreatedV1)]
pub struct CompanyCreatedV2;

#[derive(DomainEvent)]
#[event(company = "acme", service = "crm", version = 3, resource = "company", action = "created", upcast_from = CompanyCreatedV1)]
pub struct CompanyCreatedV3;

impl From<CompanyCreatedV1> for CompanyCreatedV2 {
    fn from(_: CompanyCreatedV1) -> Self {
        CompanyCreatedV2
    }
}
impl From<CompanyCreatedV1> for CompanyCreatedV3 {
    fn from(_: CompanyCreatedV1) -> Self {
        CompanyCreatedV3
    }
}

fn main() {}
