use events_core::DomainEvent;

#[derive(DomainEvent)]
#[event(company = "acme", service = "mail", version = 1, resource = "email", action = "sent")]
struct EmailSent;

#[derive(DomainEvent)]
#[event(company = "acme", service = "billing", version = 1, resource = "invoice", action = "partially_paid")]
struct InvoicePartiallyPaid;

#[derive(DomainEvent)]
#[event(company = "acme", service = "build", version = 1, resource = "image", action = "rebuilt")]
struct ImageRebuilt;

#[derive(DomainEvent)]
#[event(company = "acme_2", service = "api_v2", version = 4294967295, resource = "user_profile", action = "email_changed")]
struct EmailChanged;

fn main() {
    assert_eq!(EmailChanged::EVENT_NAME, "acme_2.api_v2.4294967295.event.user_profile.email_changed");
    let _ = (EmailSent::EVENT_NAME, InvoicePartiallyPaid::EVENT_NAME, ImageRebuilt::EVENT_NAME);
}
