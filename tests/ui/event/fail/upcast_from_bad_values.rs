// `upcast_from` names an event type: not a string, not an expression, not
// a type that is no event.
use events_core::DomainEvent;

#[derive(DomainEvent)]
#[event(company = "acme", service = "crm", version = 1, resource = "company", action = "created")]
pub struct CompanyCreatedV1;

#[derive(DomainEvent)]
#[event(company = "acme", service = "crm", version = 2, resource = "company", action = "created", upcast_from = "CompanyCreatedV1")]
pub struct AString;

#[derive(DomainEvent)]
#[event(company = "acme", service = "crm", version = 2, resource = "company", action = "renamed", upcast_from = 1 + 1)]
pub struct AnExpression;

#[derive(DomainEvent)]
#[event(company = "acme", service = "crm", version = 2, resource = "company", action = "deleted", upcast_from)]
pub struct NoValue;

#[derive(DomainEvent)]
#[event(company = "acme", service = "crm", version = 2, resource = "company", action = "merged", upcast_from = String)]
pub struct NotAnEvent;

impl From<String> for NotAnEvent {
    fn from(_: String) -> Self {
        NotAnEvent
    }
}

fn main() {}
