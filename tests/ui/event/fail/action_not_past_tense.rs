use events_core::DomainEvent;

#[derive(DomainEvent)]
#[event(company = "testclean", service = "api", version = 1, resource = "company", action = "create")]
struct CompanyCreated;

#[derive(DomainEvent)]
#[event(company = "testclean", service = "api", version = 1, resource = "invoice", action = "email_send")]
struct InvoiceEmailSent;

#[derive(DomainEvent)]
#[event(company = "testclean", service = "api", version = 1, resource = "order", action = "sends")]
struct OrderSent;

fn main() {}
