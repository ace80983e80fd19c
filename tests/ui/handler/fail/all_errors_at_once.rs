// Every broken rule of a handler is reported in one compile, including the
// `&mut` of the event argument.
use events_core::{handler, DomainEvent, Event};

#[derive(DomainEvent, Debug, Clone)]
#[event(company = "testclean", service = "api", version = 1, resource = "company", action = "created")]
pub struct CompanyCreated {
    pub name: String,
}

#[handler]
fn on_created(event: &mut Event<CompanyCreated>, mailer: &str) {
    let _ = (event, mailer);
}

fn main() {}
