use events_core::DomainEvent;

#[derive(DomainEvent)]
#[event(company = "testclean", service = "api", version = 1, resource = "company", action = "created")]
pub struct CompanyCreated {
    pub company_name: String,
}

fn main() {
    assert_eq!(CompanyCreated::EVENT_NAME, "testclean.api.1.event.company.created");
    assert_eq!(CompanyCreated::NAME.company, "testclean");
    assert_eq!(CompanyCreated::NAME.service, "api");
    assert_eq!(CompanyCreated::NAME.version, 1);
    assert_eq!(CompanyCreated::NAME.resource, "company");
    assert_eq!(CompanyCreated::NAME.action, "created");
}
