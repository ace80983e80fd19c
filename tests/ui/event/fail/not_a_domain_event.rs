fn publish<E: events_core::DomainEvent>(_event: E) {}

struct CompanyCreated {
    name: String,
}

fn main() {
    publish(CompanyCreated { name: String::new() });
}
