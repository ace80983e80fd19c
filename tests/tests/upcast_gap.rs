//! A chain with a gap is a start-up error naming the types: v3 upcasts
//! from v1 while v2 is linked, so events published as v2 would not reach
//! v3's handlers. (A test binary of its own: the gap fails every bus of the
//! binary.)

use events_core::{upcast::UpcastError, BusError, DomainEvent, EventBus};

#[derive(DomainEvent)]
#[event(
    company = "acme",
    service = "crm",
    version = 1,
    resource = "lead",
    action = "won"
)]
pub struct LeadWonV1;

#[derive(DomainEvent)]
#[event(
    company = "acme",
    service = "crm",
    version = 2,
    resource = "lead",
    action = "won"
)]
pub struct LeadWonV2;

#[derive(DomainEvent)]
#[event(
    company = "acme",
    service = "crm",
    version = 3,
    resource = "lead",
    action = "won",
    upcast_from = LeadWonV1
)]
pub struct LeadWonV3;

impl From<LeadWonV1> for LeadWonV3 {
    fn from(_: LeadWonV1) -> Self {
        LeadWonV3
    }
}

#[test]
fn a_chain_that_skips_a_linked_version_fails_the_build_of_the_bus() {
    assert_eq!(LeadWonV2::EVENT_NAME, "acme.crm.2.event.lead.won");
    let err = EventBus::builder()
        .discover(false)
        .without_store()
        .build()
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, BusError::Upcast(UpcastError::Gap { .. })),
        "{text}"
    );
    assert_eq!(
        text,
        "the upcaster chain has a gap: `upcast_gap::LeadWonV3` (version 3) upcasts from `upcast_gap::LeadWonV1` \
         (version 1), skipping `upcast_gap::LeadWonV2` (`acme.crm.2.event.lead.won`), which this program also \
         links, so events published under `acme.crm.2.event.lead.won` would not reach the handlers of \
         `upcast_gap::LeadWonV3`; declare `upcast_from = LeadWonV2` on `upcast_gap::LeadWonV3` and \
         `upcast_from = LeadWonV1` on `upcast_gap::LeadWonV2`"
    );
}
