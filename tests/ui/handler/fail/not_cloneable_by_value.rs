use events_core::{handler, DomainEvent};

#[derive(DomainEvent, Debug)]
#[event(company = "testclean", service = "api", version = 1, resource = "company", action = "created")]
pub struct CompanyCreated {
    pub name: String,
}

#[handler]
async fn take(event: CompanyCreated) {
    let _ = event;
}

fn main() {}
