use events_core::{handler, DomainEvent, Event};

#[derive(DomainEvent, Debug, Clone)]
#[event(company = "testclean", service = "api", version = 1, resource = "company", action = "created")]
pub struct CompanyCreated {
    pub name: String,
}

#[handler(crate = "not a path")]
async fn bad_path(event: &Event<CompanyCreated>) {
    let _ = event;
}

// The path is used: a module that is not `events_core` fails to resolve.
mod not_events {}

#[handler(crate = "not_events")]
async fn wrong_crate(event: &Event<CompanyCreated>) {
    let _ = event;
}

#[handler(crate = "events_core", crate = "events_core")]
async fn twice(event: &Event<CompanyCreated>) {
    let _ = event;
}

fn main() {}
