use events_core::{handler, DomainEvent, Event};

#[derive(DomainEvent, Debug, Clone)]
#[event(company = "testclean", service = "api", version = 1, resource = "company", action = "created")]
pub struct CompanyCreated {
    pub name: String,
}

#[handler]
async fn by_ref(event: &String) {
    let _ = event;
}

#[handler]
async fn by_value(event: Event<u32>) {
    let _ = event;
}

fn main() {}
