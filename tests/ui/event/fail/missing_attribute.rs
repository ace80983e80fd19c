use events_core::DomainEvent;

#[derive(DomainEvent)]
struct CompanyCreated {
    name: String,
}

fn main() {}
