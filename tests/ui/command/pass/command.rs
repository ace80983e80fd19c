// A command: `message_type = "command"` with an infinitive action, handled
// by a `#[handler]`, in every name form.
use events_core::{handler, DomainEvent, Event};

#[derive(DomainEvent, Debug, Clone)]
#[event(company = "acme", service = "billing", version = 1, message_type = "command", resource = "invoice", action = "send")]
pub struct SendInvoice {
    pub invoice_id: String,
}

#[derive(DomainEvent)]
#[event(company = "acme", service = "billing", version = 1, message_type = "command", resource = "invoice", action = "email_reset")]
pub struct ResetInvoiceEmail;

#[derive(DomainEvent)]
#[event(company = "acme", service = "feeds", version = 1, message_type = "command", resource = "item", action = "feed")]
pub struct Feed;

#[handler]
async fn send_invoice(command: &Event<SendInvoice>) {
    let _ = (&command.invoice_id, command.id());
}

fn main() {
    assert_eq!(SendInvoice::EVENT_NAME, "acme.billing.1.command.invoice.send");
    assert!(SendInvoice::NAME.is_command());
    assert_eq!(SendInvoice::NAME.to_string(), SendInvoice::EVENT_NAME);
    assert_eq!(ResetInvoiceEmail::EVENT_NAME, "acme.billing.1.command.invoice.email_reset");
    assert_eq!(Feed::NAME.action, "feed");
}
