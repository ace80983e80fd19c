//! The process-wide bus, for dependency injection (the seed's
//! `get_event_bus` / `reset_event_bus`).

use std::sync::Mutex;

use super::{BusError, EventBus};

static GLOBAL: Mutex<Option<EventBus>> = Mutex::new(None);

fn global() -> std::sync::MutexGuard<'static, Option<EventBus>> {
    // The guarded value is a plain Option swap: a poisoned lock is consistent.
    GLOBAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// The process-wide bus, for dependency injection: built from the
/// environment ([`EventBus::from_env`]) on first use, or the one given to
/// [`set_event_bus`].
pub async fn get_event_bus() -> Result<EventBus, BusError> {
    if let Some(bus) = global().clone() {
        return Ok(bus);
    }
    let bus = EventBus::from_env().await?;
    // Another task may have won the race: keep the first one.
    Ok(global().get_or_insert(bus).clone())
}

/// Makes `bus` the process-wide bus.
pub fn set_event_bus(bus: EventBus) {
    *global() = Some(bus);
}

/// Forgets the process-wide bus (tests call it between cases); the next
/// [`get_event_bus`] builds a new one.
pub fn reset_event_bus() {
    global().take();
}
