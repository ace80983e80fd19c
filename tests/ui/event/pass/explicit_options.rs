// `crate = ...` for a renamed dependency, and an explicit `message_type`.
extern crate events_core as renamed_events;

use renamed_events::DomainEvent;

#[derive(DomainEvent)]
#[event(
    crate = "renamed_events",
    company = "testclean",
    service = "api",
    version = 1,
    message_type = "event",
    resource = "company",
    action = "created"
)]
struct CompanyCreated;

fn main() {
    assert_eq!(CompanyCreated::EVENT_NAME, "testclean.api.1.event.company.created");
}
