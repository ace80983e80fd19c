use events_core::DomainEvent;

#[derive(DomainEvent)]
#[event(company = "testclean", service = "api", version = 1, resource = "company", action = "created")]
union CompanyCreated {
    id: u64,
    code: u32,
}

fn main() {}
