use events_core::{Handler, HandlerResult};
use events_core::{handler, DomainEvent, Event};

#[derive(DomainEvent, Debug, Clone)]
#[event(company = "testclean", service = "api", version = 1, resource = "company", action = "created")]
pub struct CompanyCreated {
    pub name: String,
}

#[derive(Default)]
struct Mailer<T>(std::marker::PhantomData<T>);

#[handler]
impl<T: Send + Sync + 'static> Handler<CompanyCreated> for Mailer<T> {
    async fn handle(&self, event: &Event<CompanyCreated>) -> HandlerResult {
        let _ = event;
        Ok(())
    }
}

fn main() {}
