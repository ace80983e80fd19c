use events_core::{handler, DomainEvent};

#[derive(DomainEvent, Debug, Clone)]
#[event(company = "testclean", service = "api", version = 1, resource = "company", action = "created")]
pub struct CompanyCreated {
    pub name: String,
}

#[derive(Default)]
struct Mailer;

trait Handler<const N: usize> {}

#[handler]
impl Handler<3> for Mailer {}

fn main() {
    let _ = CompanyCreated { name: String::new() };
}
