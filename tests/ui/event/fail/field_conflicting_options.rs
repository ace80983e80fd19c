use events_core::DomainEvent;

#[derive(DomainEvent)]
#[event(company = "testclean", service = "api", version = 1, resource = "company", action = "created")]
struct CompanyCreated {
    #[event(skip, default)]
    cache: u32,
    #[event(skip, rename = "x")]
    scratch: u32,
}

fn main() {}
