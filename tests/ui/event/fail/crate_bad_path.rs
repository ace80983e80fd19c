use events_core::DomainEvent;

#[derive(DomainEvent)]
#[event(crate = "not a path", company = "testclean", service = "api", version = 1, resource = "company", action = "created")]
struct CompanyCreated;

fn main() {}
