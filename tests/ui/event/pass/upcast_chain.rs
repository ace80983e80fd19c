// A chain v1 -> v2 -> v3, each upcaster a plain `From` impl, with a source
// named by a path; and a command's chain.
use events_core::{handler, DomainEvent, Event};

mod v1 {
    #[derive(events_core::DomainEvent, Debug, Clone)]
    #[event(company = "acme", service = "crm", version = 1, resource = "company", action = "created")]
    pub struct CompanyCreated {
        pub name: String,
    }
}

#[derive(DomainEvent, Debug, Clone)]
#[event(company = "acme", service = "crm", version = 2, resource = "company", action = "created", upcast_from = v1::CompanyCreated)]
pub struct CompanyCreatedV2 {
    pub name: String,
    pub country: Option<String>,
}

#[derive(DomainEvent, Debug, Clone)]
#[event(company = "acme", service = "crm", version = 3, resource = "company", action = "created", upcast_from = CompanyCreatedV2)]
pub struct CompanyCreatedV3 {
    pub legal_name: String,
    pub country: String,
}

impl From<v1::CompanyCreated> for CompanyCreatedV2 {
    fn from(old: v1::CompanyCreated) -> Self {
        CompanyCreatedV2 { name: old.name, country: None }
    }
}

impl From<CompanyCreatedV2> for CompanyCreatedV3 {
    fn from(old: CompanyCreatedV2) -> Self {
        CompanyCreatedV3 {
            legal_name: old.name,
            country: old.country.unwrap_or_else(|| "unknown".to_owned()),
        }
    }
}

#[handler]
async fn on_created(event: &Event<CompanyCreatedV3>) {
    let _ = (event.published_as(), &event.legal_name);
}

#[derive(DomainEvent)]
#[event(company = "acme", service = "billing", version = 1, message_type = "command", resource = "invoice", action = "send")]
pub struct SendInvoiceV1;

#[derive(DomainEvent)]
#[event(company = "acme", service = "billing", version = 2, message_type = "command", resource = "invoice", action = "send", upcast_from = SendInvoiceV1)]
pub struct SendInvoiceV2 {
    pub copies: u8,
}

impl From<SendInvoiceV1> for SendInvoiceV2 {
    fn from(_: SendInvoiceV1) -> Self {
        SendInvoiceV2 { copies: 1 }
    }
}

fn main() {
    assert_eq!(CompanyCreatedV3::EVENT_NAME, "acme.crm.3.event.company.created");
    assert_eq!(SendInvoiceV2::EVENT_NAME, "acme.billing.2.command.invoice.send");
}
