use events_core::{handler, DomainEvent, Event};

#[derive(DomainEvent, Debug, Clone)]
#[event(company = "testclean", service = "api", version = 1, resource = "company", action = "created")]
pub struct CompanyCreated {
    pub name: String,
}

#[handler]
async fn count(event: &Event<CompanyCreated>) -> usize {
    event.name.len()
}

#[handler]
async fn check(event: &CompanyCreated) -> Result<(), u32> {
    let _ = event;
    Err(1)
}

fn main() {}
