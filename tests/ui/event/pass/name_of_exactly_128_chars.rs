use events_core::DomainEvent;

// 128 characters in all: the EventBridge DetailType limit, inclusive.
#[derive(DomainEvent)]
#[event(
    company = "acme",
    service = "api",
    version = 1,
    resource = "rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr",
    action = "created"
)]
struct Long;

fn main() {
    assert_eq!(Long::EVENT_NAME.len(), 128);
}
