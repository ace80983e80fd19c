//! Start-up: the seed's `lifespan`.

use events_core::{BusError, EventBus};

/// Builds the bus from the environment (`EVENT_BUS_*`), with every handler
/// linked into the program, and the publisher `EVENT_BUS_MODE` asks for.
///
/// The `company-notifications` crate's handlers are found because the
/// program links it (`use company_notifications as _;` in `main`).
pub async fn build_event_bus() -> Result<EventBus, BusError> {
    EventBus::from_env().await
}

/// [`build_event_bus`] with the variables read through `lookup` instead of
/// the process environment (what the start-up tests pass).
pub async fn build_event_bus_from(
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<EventBus, BusError> {
    EventBus::from_lookup(lookup).await
}
