use events_core::DomainEvent;

#[derive(DomainEvent)]
#[event(company = "Test Clean", service = "api!", version = "1", resource = "Company", action = "create")]
struct CompanyCreated;

fn main() {}
