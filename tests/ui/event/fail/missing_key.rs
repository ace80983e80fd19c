use events_core::DomainEvent;

#[derive(DomainEvent)]
#[event(company = "testclean", service = "api", resource = "company", action = "created")]
struct CompanyCreated;

#[derive(DomainEvent)]
#[event(company = "testclean", version = 1)]
struct CompanyUpdated;

fn main() {}
