// The other naming rules hold for commands as for events, all reported at
// once; a bad action is hinted as an infinitive.
use events_core::DomainEvent;

#[derive(DomainEvent)]
#[event(company = "Acme", service = "billing", version = "1", message_type = "command", resource = "invoice", action = "Send")]
pub struct SendInvoice;

#[derive(DomainEvent)]
#[event(company = "acme", service = "billing", version = 1, message_type = "Command", resource = "invoice", action = "send")]
pub struct WrongMessageType;

fn main() {}
