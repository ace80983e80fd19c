use events_core::DomainEvent;

#[derive(DomainEvent)]
#[event(compnay = "testclean", service = "api", version = 1, resource = "company", action = "created", topic = "x")]
struct CompanyCreated;

fn main() {}
