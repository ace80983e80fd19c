//! Scoping the process-wide bus to one test: a thread-local slot that
//! `get_event_bus`, `set_event_bus` and `reset_event_bus` consult first.

use std::cell::RefCell;
use std::marker::PhantomData;

use crate::bus::EventBus;

thread_local! {
    /// Open scopes, innermost last; each holds its test's bus, if any.
    static SCOPES: RefCell<Vec<Option<EventBus>>> = const { RefCell::new(Vec::new()) };
}

/// What the innermost scope of this thread holds.
pub(crate) enum Found {
    /// A bus.
    Bus(EventBus),
    /// An open scope without a bus (after a reset inside it).
    Empty,
    /// No scope is open on this thread.
    Unscoped,
}

/// The innermost scope's bus.
pub(crate) fn get() -> Found {
    SCOPES.with(|s| match s.borrow().last() {
        Some(Some(bus)) => Found::Bus(bus.clone()),
        Some(None) => Found::Empty,
        None => Found::Unscoped,
    })
}

/// Puts `bus` in the innermost scope unless one got there first; returns
/// the scope's bus. Without a scope (the caller moved threads while building
/// it), returns `bus`.
pub(crate) fn fill(bus: EventBus) -> EventBus {
    SCOPES.with(|s| match s.borrow_mut().last_mut() {
        Some(slot) => slot.get_or_insert(bus).clone(),
        None => bus,
    })
}

/// Replaces the innermost scope's bus; `false` when no scope is open (the
/// caller then changes the process-wide bus).
pub(crate) fn replace(bus: Option<EventBus>) -> bool {
    SCOPES.with(|s| match s.borrow_mut().last_mut() {
        Some(slot) => {
            *slot = bus;
            true
        }
        None => false,
    })
}

/// Makes `bus` the process-wide bus of this test until the returned guard
/// is dropped.
///
/// While the guard lives, [`get_event_bus`](crate::get_event_bus) on this
/// thread returns `bus`, and [`set_event_bus`](crate::set_event_bus) /
/// [`reset_event_bus`](crate::reset_event_bus) change this scope only:
/// tests running in parallel each see their own bus, and a test that resets
/// the bus never pulls it from under another. Dropping the guard restores
/// whatever was in force before (scopes nest).
///
/// The scope belongs to the thread that opened it: under `#[tokio::test]`
/// (a current-thread runtime) that is the test and every task it spawns. On
/// a multi-thread runtime, tasks spawned onto other workers see the shared
/// process-wide bus; pass them the bus instead.
///
/// ```
/// use events_core::testing::{scope_event_bus, RecordingBus};
/// # #[derive(events_core::DomainEvent, Debug, Clone)]
/// # #[event(company = "acme", service = "shop", version = 1, resource = "order", action = "placed")]
/// # struct OrderPlaced { total: u64 }
///
/// /// Code under test that takes the process-wide bus, as the seed's factories do.
/// async fn place_order(total: u64) -> Result<(), events_core::BusError> {
///     let bus = events_core::get_event_bus().await?;
///     bus.publish(OrderPlaced { total }).await?;
///     Ok(())
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), events_core::BusError> {
/// let bus = RecordingBus::new();
/// let _scope = scope_event_bus(&bus);
/// place_order(10).await?;
/// bus.assert_published::<OrderPlaced>(|e| e.total == 10);
/// # Ok(())
/// # }
/// ```
pub fn scope_event_bus(bus: impl Into<EventBus>) -> EventBusScope {
    let depth = SCOPES.with(|s| {
        let mut scopes = s.borrow_mut();
        scopes.push(Some(bus.into()));
        scopes.len()
    });
    EventBusScope {
        depth,
        _thread_bound: PhantomData,
    }
}

/// The guard of [`scope_event_bus`]: the scope closes when it is dropped.
/// It stays on the thread that opened it (it is not `Send`).
#[must_use = "the scope closes when this guard is dropped; bind it: `let _scope = ...`"]
#[derive(Debug)]
pub struct EventBusScope {
    depth: usize,
    _thread_bound: PhantomData<*const ()>,
}

impl Drop for EventBusScope {
    fn drop(&mut self) {
        // Closes this scope and any opened inside it and not yet closed.
        let depth = self.depth;
        SCOPES.with(|s| s.borrow_mut().truncate(depth.saturating_sub(1)));
    }
}
