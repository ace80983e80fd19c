// `Event<E>` of an `E` that is not an event: one error, at `E`, saying so.
use events_core::{handler, DomainEvent, Event};

#[derive(DomainEvent, Debug, Clone)]
#[event(company = "testclean", service = "api", version = 1, resource = "company", action = "created")]
pub struct CompanyCreated {
    pub name: String,
}

#[handler]
async fn takes_event_of_string(event: &Event<String>) {
    let _ = event;
}

#[handler]
async fn takes_event_of_vec(event: Event<Vec<u8>>) {
    let _ = event;
}

fn main() {}
