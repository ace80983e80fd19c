// `upcast_from` needs the conversion, written as a `From` impl.
use events_core::DomainEvent;

#[derive(DomainEvent)]
#[event(company = "acme", service = "crm", version = 1, resource = "company", action = "created")]
pub struct CompanyCreatedV1 {
    pub name: String,
}

#[derive(DomainEvent)]
#[event(company = "acme", service = "crm", version = 2, resource = "company", action = "created", upcast_from = CompanyCreatedV1)]
pub struct CompanyCreatedV2 {
    pub name: String,
    pub country: String,
}

fn main() {}
