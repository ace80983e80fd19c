use events_core::DomainEvent;

#[derive(DomainEvent)]
#[event(company = "testclean", service = "api", version = 1, resource = "company", action = "changed")]
enum CompanyChanged {
    Created,
    Deleted,
}

fn main() {}
