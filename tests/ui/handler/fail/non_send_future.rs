use events_core::{handler, DomainEvent, Event};

#[derive(DomainEvent, Debug, Clone)]
#[event(company = "testclean", service = "api", version = 1, resource = "company", action = "created")]
pub struct CompanyCreated {
    pub name: String,
}

async fn yield_now() {}

#[handler]
async fn send_welcome_email(event: &Event<CompanyCreated>) {
    let counter = std::rc::Rc::new(event.name.len());
    yield_now().await;
    let _ = counter;
}

fn main() {}
