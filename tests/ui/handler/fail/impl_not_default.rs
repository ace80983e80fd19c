use events_core::{Handler, HandlerResult};
use events_core::{handler, DomainEvent, Event};

#[derive(DomainEvent, Debug, Clone)]
#[event(company = "testclean", service = "api", version = 1, resource = "company", action = "created")]
pub struct CompanyCreated {
    pub name: String,
}

struct Mailer {
    from: String,
}

#[handler]
impl Handler<CompanyCreated> for Mailer {
    async fn handle(&self, event: &Event<CompanyCreated>) -> HandlerResult {
        let _ = (event, &self.from);
        Ok(())
    }
}

fn main() {}
