use events_core::{handler, DomainEvent, Event};

#[derive(DomainEvent, Debug, Clone)]
#[event(company = "testclean", service = "api", version = 1, resource = "company", action = "created")]
pub struct CompanyCreated {
    pub name: String,
}

struct Mailer;

impl Mailer {
    #[handler]
    async fn send_welcome_email(&self, event: &Event<CompanyCreated>) {
        let _ = event;
    }
}

fn main() {}
