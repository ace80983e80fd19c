use events_core::DomainEvent;

#[derive(DomainEvent)]
#[event(company = "testclean", service = "api", version = 1, resource = "company", action = "created")]
struct CompanyCreated {
    #[event(renamed = "name")]
    company_name: String,
    #[event(rename = "a", rename = "b")]
    country: String,
    #[event(skip, skip)]
    cache: u32,
}

fn main() {}
