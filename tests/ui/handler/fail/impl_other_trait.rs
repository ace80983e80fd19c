use events_core::{handler, DomainEvent};

#[derive(DomainEvent, Debug, Clone)]
#[event(company = "testclean", service = "api", version = 1, resource = "company", action = "created")]
pub struct CompanyCreated {
    pub name: String,
}

#[derive(Default)]
struct Mailer;

#[handler]
impl std::fmt::Display for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("mailer")
    }
}

fn main() {}
