use events_core::DomainEvent;

#[derive(DomainEvent)]
#[event(company = "testclean", service = "api", version = 0, resource = "company", action = "created")]
struct CompanyCreated;

#[derive(DomainEvent)]
#[event(company = "testclean", service = "api", version = 4294967296, resource = "company", action = "updated")]
struct CompanyUpdated;

fn main() {}
