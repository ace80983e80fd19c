// A command's action says what to do: an infinitive, not a past form.
use events_core::DomainEvent;

#[derive(DomainEvent)]
#[event(company = "acme", service = "billing", version = 1, message_type = "command", resource = "invoice", action = "sent")]
pub struct SendInvoice;

#[derive(DomainEvent)]
#[event(company = "acme", service = "crm", version = 1, message_type = "command", resource = "company", action = "created")]
pub struct CreateCompany;

#[derive(DomainEvent)]
#[event(company = "acme", service = "crm", version = 1, message_type = "command", resource = "order", action = "items_cancelled")]
pub struct CancelItems;

fn main() {}
