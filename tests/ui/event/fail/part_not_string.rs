use events_core::DomainEvent;

#[derive(DomainEvent)]
#[event(company = 1, service = true, version = 1, resource = "company", action = "created")]
struct CompanyCreated;

fn main() {}
