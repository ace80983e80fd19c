use events_core::{handler, DomainEvent};

#[derive(DomainEvent, Debug, Clone)]
#[event(company = "testclean", service = "api", version = 1, resource = "company", action = "created")]
pub struct CompanyCreated {
    pub name: String,
}

#[handler]
async fn on_created(event: &String) {
    let _ = event;
}

fn main() {}
