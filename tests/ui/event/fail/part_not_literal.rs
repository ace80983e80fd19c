use events_core::DomainEvent;

const COMPANY: &str = "testclean";

#[derive(DomainEvent)]
#[event(company = COMPANY, service = "api", version = 1, resource = "company", action = "created")]
struct CompanyCreated;

fn main() {}
