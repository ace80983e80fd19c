use events_core::{Handler, HandlerResult};
use events_core::{handler, DomainEvent, Event};

#[derive(DomainEvent, Debug, Clone)]
#[event(company = "testclean", service = "api", version = 1, resource = "company", action = "created")]
pub struct CompanyCreated {
    pub name: String,
}

#[derive(Default)]
struct Mailer {
    sent: std::sync::atomic::AtomicUsize,
}

#[handler]
impl Handler<CompanyCreated> for Mailer {
    async fn handle(&self, event: &Event<CompanyCreated>) -> HandlerResult {
        let _ = &event.name;
        self.sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}

fn main() {
    let found = events_core::handler::discovered_handlers().find(|h| h.name().ends_with("::Mailer"));
    assert_eq!(found.map(|h| h.event_name()), Some("testclean.api.1.event.company.created"));
}
