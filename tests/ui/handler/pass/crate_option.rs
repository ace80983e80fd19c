// `crate = "..."` for a renamed or re-exported `events_core`, on the derive
// and on `#[handler]` (both forms).
extern crate events_core as renamed_events;

mod reexport {
    pub use ::events_core as events;
}

use renamed_events::{handler, DomainEvent, Event, Handler, HandlerResult};

#[derive(DomainEvent, Debug, Clone)]
#[event(crate = "renamed_events", company = "testclean", service = "api", version = 1, resource = "company", action = "created")]
pub struct CompanyCreated {
    pub name: String,
}

#[handler(crate = "renamed_events")]
async fn by_renamed_crate(event: &Event<CompanyCreated>) {
    let _ = event;
}

#[handler(crate = "crate::reexport::events")]
async fn by_reexport(event: CompanyCreated) {
    let _ = event;
}

#[derive(Default)]
struct Mailer;

#[handler(crate = "reexport::events")]
impl Handler<CompanyCreated> for Mailer {
    async fn handle(&self, event: &Event<CompanyCreated>) -> HandlerResult {
        let _ = event;
        Ok(())
    }
}

fn main() {
    let names: Vec<&str> = renamed_events::handler::discovered_handlers().map(|h| h.name()).collect();
    for expected in ["by_renamed_crate", "by_reexport", "Mailer"] {
        assert!(names.iter().any(|n| n.ends_with(expected)), "{expected} missing from {names:?}");
    }
}
