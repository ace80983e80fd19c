use events_core::{handler, DomainEvent, Event};

#[derive(DomainEvent, Debug, Clone)]
#[event(company = "testclean", service = "api", version = 1, resource = "company", action = "created")]
pub struct CompanyCreated {
    pub name: String,
}

#[handler]
async fn rename(event: &mut Event<CompanyCreated>) {
    let _ = event;
}

fn main() {}
