use events_core::{handler, DomainEvent, Event};

#[derive(DomainEvent, Debug, Clone)]
#[event(company = "testclean", service = "api", version = 1, resource = "company", action = "created")]
pub struct CompanyCreated {
    pub name: String,
}

#[handler]
async fn send_welcome_email(event: &Event<CompanyCreated>, retries: u32) {
    let _ = (event, retries);
}

fn main() {}
