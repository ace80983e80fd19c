use events_core::DomainEvent;

#[derive(DomainEvent)]
#[event(company = "testclean", service = "my-api", version = 1, resource = "company", action = "created")]
struct CompanyCreated;

fn main() {}
