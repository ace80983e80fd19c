use events_core::DomainEvent;

#[derive(DomainEvent)]
#[event(company = "testclean", service = "api", version = 1, resource = "company", action = "created", company = "other")]
struct CompanyCreated;

#[derive(DomainEvent)]
#[event(company = "testclean", service = "api", version = 1)]
#[event(resource = "company", action = "updated", version = 2)]
struct CompanyUpdated;

fn main() {}
