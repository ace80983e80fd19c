//! The process-wide bus, for dependency injection (the seed's
//! `get_event_bus` / `reset_event_bus`).
//!
//! With the `testing` feature, a test can scope the process-wide bus to
//! itself (`events_core::testing::scope_event_bus`): while its guard lives,
//! `get_event_bus`, `set_event_bus` and `reset_event_bus` on that thread, and
//! in the tasks of the tokio runtime it was opened in, read and change the
//! test's own slot instead of the shared one, so tests that run in parallel
//! never see each other's bus. Code that finds no scope of its own while
//! scopes are open never gets a bus built from the environment: it panics,
//! saying so (see `testing::scope` for the design).

use std::sync::Mutex;

use super::{BusError, EventBus};
#[cfg(feature = "testing")]
use crate::testing::scope;

/// The process-wide bus and how it got there.
struct Global {
    bus: EventBus,
    /// Built by [`get_event_bus`] from the environment, not given to
    /// [`set_event_bus`].
    #[cfg_attr(not(feature = "testing"), allow(dead_code))]
    from_env: bool,
}

static GLOBAL: Mutex<Option<Global>> = Mutex::new(None);

fn global() -> std::sync::MutexGuard<'static, Option<Global>> {
    // The guarded value is a plain Option swap: a poisoned lock is consistent.
    GLOBAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// The process-wide bus, for dependency injection: built from the
/// environment ([`EventBus::from_env`]) on first use, or the one given to
/// [`set_event_bus`].
///
/// With the `testing` feature, the scope of the test comes first
/// (`events_core::testing::scope_event_bus`: the scope opened on this thread,
/// or on the tokio runtime this task runs on).
///
/// # Panics
///
/// Only with the `testing` feature, while a test scope is open somewhere in
/// the process: when the caller is in no scope and would get a bus built
/// from the environment (the real one: a store on disk, EventBridge), or is
/// a task of a runtime on which several threads opened scopes. The message
/// says which, and to pass the bus instead.
///
/// # Errors
///
/// The errors of [`EventBus::from_env`] when the process-wide bus is built (the
/// first call).
pub async fn get_event_bus() -> Result<EventBus, BusError> {
    #[cfg(feature = "testing")]
    match scope::get() {
        scope::Found::Scope { bus: Some(bus), .. } => return Ok(bus),
        scope::Found::Scope { key, bus: None } => {
            let bus = EventBus::from_env().await?;
            return Ok(scope::fill(key, bus));
        }
        scope::Found::Elsewhere(stray) => match &*global() {
            Some(Global {
                bus,
                from_env: false,
            }) if !stray.is_ambiguous() => return Ok(bus.clone()),
            _ => stray.fail("get_event_bus()"),
        },
        scope::Found::Unscoped => {}
    }
    if let Some(global) = &*global() {
        return Ok(global.bus.clone());
    }
    let bus = EventBus::from_env().await?;
    // Another task may have won the race: keep the first one.
    Ok(global()
        .get_or_insert(Global {
            bus,
            from_env: true,
        })
        .bus
        .clone())
}

/// Makes `bus` the process-wide bus (or, with the `testing` feature, the bus
/// of the caller's test scope).
///
/// # Panics
///
/// Only with the `testing` feature: in a task of a runtime on which several
/// threads opened test scopes (it cannot tell which to change).
pub fn set_event_bus(bus: EventBus) {
    #[cfg(feature = "testing")]
    if scope::replace(Some(bus.clone()), "set_event_bus()") {
        return;
    }
    *global() = Some(Global {
        bus,
        from_env: false,
    });
}

/// Forgets the process-wide bus (tests call it between cases); the next
/// [`get_event_bus`] builds a new one. With the `testing` feature and a test
/// scope, it empties the scope's slot instead.
///
/// # Panics
///
/// As [`set_event_bus`].
pub fn reset_event_bus() {
    #[cfg(feature = "testing")]
    if scope::replace(None, "reset_event_bus()") {
        return;
    }
    global().take();
}
