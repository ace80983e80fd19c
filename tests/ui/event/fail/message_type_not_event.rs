use events_core::DomainEvent;

#[derive(DomainEvent)]
#[event(company = "testclean", service = "api", version = 1, message_type = "query", resource = "company", action = "created")]
struct CompanyCreated;

fn main() {}
