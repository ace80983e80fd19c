use events_core::DomainEvent;

#[derive(DomainEvent)]
#[event(company = "testclean", service = "api", version = 1, resource = "company", action = "created")]
struct CompanyCreated {
    #[event(rename = "")]
    company_name: String,
    #[event(rename = 5)]
    country: String,
    #[event(skip = true)]
    cache: u32,
    #[event(default = "not a path")]
    size: u32,
    #[event]
    other: u32,
}

fn main() {}
