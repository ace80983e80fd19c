use events_core::DomainEvent;

#[derive(DomainEvent)]
#[event = "testclean.api.1.event.company.created"]
struct CompanyCreated;

#[derive(DomainEvent)]
#[event]
struct CompanyUpdated;

fn main() {}
