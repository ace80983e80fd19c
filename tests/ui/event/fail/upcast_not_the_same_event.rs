// An upcaster converts an older version of the same event: each of these
// names another event as its source.
use events_core::DomainEvent;

#[derive(DomainEvent)]
#[event(company = "acme", service = "crm", version = 1, resource = "company", action = "created")]
pub struct CompanyCreatedV1;

#[derive(DomainEvent)]
#[event(company = "other", service = "crm", version = 1, resource = "company", action = "created")]
pub struct OtherCompany;

#[derive(DomainEvent)]
#[event(company = "acme", service = "billing", version = 1, resource = "company", action = "created")]
pub struct OtherService;

#[derive(DomainEvent)]
#[event(company = "acme", service = "crm", version = 1, resource = "lead", action = "created")]
pub struct OtherResource;

#[derive(DomainEvent)]
#[event(company = "acme", service = "crm", version = 1, resource = "company", action = "deleted")]
pub struct OtherAction;

#[derive(DomainEvent)]
#[event(company = "acme", service = "crm", version = 2, resource = "company", action = "created", upcast_from = OtherCompany)]
pub struct FromOtherCompany;

#[derive(DomainEvent)]
#[event(company = "acme", service = "crm", version = 2, resource = "company", action = "created", upcast_from = OtherService)]
pub struct FromOtherService;

#[derive(DomainEvent)]
#[event(company = "acme", service = "crm", version = 2, resource = "company", action = "created", upcast_from = OtherResource)]
pub struct FromOtherResource;

#[derive(DomainEvent)]
#[event(company = "acme", service = "crm", version = 2, resource = "company", action = "created", upcast_from = OtherAction)]
pub struct FromOtherAction;

impl From<OtherCompany> for FromOtherCompany {
    fn from(_: OtherCompany) -> Self {
        FromOtherCompany
    }
}
impl From<OtherService> for FromOtherService {
    fn from(_: OtherService) -> Self {
        FromOtherService
    }
}
impl From<OtherResource> for FromOtherResource {
    fn from(_: OtherResource) -> Self {
        FromOtherResource
    }
}
impl From<OtherAction> for FromOtherAction {
    fn from(_: OtherAction) -> Self {
        FromOtherAction
    }
}

fn main() {}
