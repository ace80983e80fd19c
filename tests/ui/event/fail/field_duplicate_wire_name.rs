use events_core::DomainEvent;

#[derive(DomainEvent)]
#[event(company = "testclean", service = "api", version = 1, resource = "company", action = "created")]
struct CompanyCreated {
    name: String,
    #[event(rename = "name")]
    company_name: String,
}

fn main() {}
