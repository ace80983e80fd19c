//! The process-wide bus, for dependency injection (the seed's
//! `get_event_bus` / `reset_event_bus`).
//!
//! With the `testing` feature, a test can scope the process-wide bus to
//! itself (`events_core::testing::scope_event_bus`): while its guard lives,
//! `get_event_bus`, `set_event_bus` and `reset_event_bus` on that thread read
//! and change the test's own slot instead of the shared one, so tests that
//! run in parallel never see each other's bus.

use std::sync::Mutex;

use super::{BusError, EventBus};
#[cfg(feature = "testing")]
use crate::testing::scope;

static GLOBAL: Mutex<Option<EventBus>> = Mutex::new(None);

fn global() -> std::sync::MutexGuard<'static, Option<EventBus>> {
    // The guarded value is a plain Option swap: a poisoned lock is consistent.
    GLOBAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// The process-wide bus, for dependency injection: built from the
/// environment ([`EventBus::from_env`]) on first use, or the one given to
/// [`set_event_bus`].
///
/// With the `testing` feature, a scope opened on this thread by
/// `events_core::testing::scope_event_bus` comes first.
pub async fn get_event_bus() -> Result<EventBus, BusError> {
    #[cfg(feature = "testing")]
    match scope::get() {
        scope::Found::Bus(bus) => return Ok(bus),
        scope::Found::Empty => {
            let bus = EventBus::from_env().await?;
            return Ok(scope::fill(bus));
        }
        scope::Found::Unscoped => {}
    }
    if let Some(bus) = global().clone() {
        return Ok(bus);
    }
    let bus = EventBus::from_env().await?;
    // Another task may have won the race: keep the first one.
    Ok(global().get_or_insert(bus).clone())
}

/// Makes `bus` the process-wide bus (or, with the `testing` feature, the bus
/// of the scope open on this thread).
pub fn set_event_bus(bus: EventBus) {
    #[cfg(feature = "testing")]
    if scope::replace(Some(bus.clone())) {
        return;
    }
    *global() = Some(bus);
}

/// Forgets the process-wide bus (tests call it between cases); the next
/// [`get_event_bus`] builds a new one. With the `testing` feature and a scope
/// open on this thread, it empties the scope's slot instead.
pub fn reset_event_bus() {
    #[cfg(feature = "testing")]
    if scope::replace(None) {
        return;
    }
    global().take();
}
