use events_core::DomainEvent;

#[derive(DomainEvent)]
#[event(company = "testclean", service = "api", version = 1, resource = "2fa_code", action = "sent")]
struct CodeSent;

fn main() {}
