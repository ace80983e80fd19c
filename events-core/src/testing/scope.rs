//! Scoping the process-wide bus to one test: open scopes that
//! `get_event_bus`, `set_event_bus` and `reset_event_bus` consult first.
//!
//! # Design
//!
//! A scope belongs to the thread that opened it and, when it was opened
//! inside a tokio runtime, to that runtime: every task spawned on the
//! runtime, on whichever worker it runs, finds the scope. That is what a
//! `#[tokio::test]` needs, whatever its flavor: each such test builds its own
//! runtime, so "the test's runtime" is "the test". (A tokio task-local would
//! not do: `tokio::spawn` does not carry task-locals into the spawned task.)
//!
//! What cannot be attributed to one test is never given the environment's
//! bus silently: while any scope is open in the process, code that finds no
//! scope of its own (a `std::thread`, another runtime) or several (a runtime
//! shared by tests that each opened a scope) panics with a message saying
//! so, instead of building the bus from `EVENT_BUS_*` (a real store on disk,
//! real handlers, EventBridge).

use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::thread::ThreadId;

use crate::bus::EventBus;

/// One open scope.
struct Open {
    /// Unique, increasing in the order scopes are opened.
    key: u64,
    /// The thread that opened it.
    thread: ThreadId,
    /// The runtime it was opened in, if any.
    runtime: Option<tokio::runtime::Id>,
    /// Its bus; `None` after a reset inside the scope.
    bus: Option<EventBus>,
}

/// Every open scope of the process, in the order they were opened.
static OPEN: Mutex<Vec<Open>> = Mutex::new(Vec::new());
static NEXT_KEY: AtomicU64 = AtomicU64::new(1);

fn open() -> MutexGuard<'static, Vec<Open>> {
    // Every critical section is a push, a removal, a lookup or a slot
    // update: a poisoned lock (a panicking test) is still consistent.
    OPEN.lock().unwrap_or_else(|p| p.into_inner())
}

/// Which scope the caller is in.
pub(crate) enum Found {
    /// A scope, with its bus if it has one (it has none after a reset).
    Scope {
        /// The scope's key.
        key: u64,
        /// Its bus.
        bus: Option<EventBus>,
    },
    /// No scope is open in the process.
    Unscoped,
    /// Scopes are open, but none is the caller's, or several could be.
    Elsewhere(Stray),
}

/// Why code that finds scopes open cannot use any of them.
pub(crate) struct Stray {
    /// How many scopes are open in the process.
    open: usize,
    /// How many of them were opened on the caller's runtime by different
    /// threads (0 or 1: none is the caller's).
    on_this_runtime: usize,
}

/// The caller's scope: the innermost one its thread opened, else the
/// innermost one opened on its tokio runtime (when only one thread opened
/// scopes there).
pub(crate) fn get() -> Found {
    let open = open();
    if open.is_empty() {
        return Found::Unscoped;
    }
    let me = std::thread::current().id();
    if let Some(scope) = open.iter().rev().find(|s| s.thread == me) {
        return found(scope);
    }
    let runtime = tokio::runtime::Handle::try_current().ok().map(|h| h.id());
    let mut on_runtime = open
        .iter()
        .filter(|s| runtime.is_some() && s.runtime == runtime);
    let Some(first) = on_runtime.next() else {
        return Found::Elsewhere(Stray {
            open: open.len(),
            on_this_runtime: 0,
        });
    };
    let mut threads = vec![first.thread];
    let mut innermost = first;
    for scope in on_runtime {
        if !threads.contains(&scope.thread) {
            threads.push(scope.thread);
        }
        innermost = scope;
    }
    if threads.len() > 1 {
        return Found::Elsewhere(Stray {
            open: open.len(),
            on_this_runtime: threads.len(),
        });
    }
    found(innermost)
}

fn found(scope: &Open) -> Found {
    Found::Scope {
        key: scope.key,
        bus: scope.bus.clone(),
    }
}

/// Puts `bus` in the scope `key` unless one got there first; returns the
/// scope's bus. If the scope closed meanwhile, returns `bus`.
pub(crate) fn fill(key: u64, bus: EventBus) -> EventBus {
    let mut open = open();
    match open.iter_mut().find(|s| s.key == key) {
        Some(scope) => scope.bus.get_or_insert(bus).clone(),
        None => bus,
    }
}

/// Replaces the caller's scope's bus (see [`get`]); `false` when no scope is
/// the caller's and none could be (the caller then changes the process-wide
/// bus).
///
/// # Panics
///
/// When several tests' scopes are open on the caller's runtime: the caller
/// cannot be told which one to change.
pub(crate) fn replace(bus: Option<EventBus>, what: &str) -> bool {
    let key = match get() {
        Found::Scope { key, .. } => key,
        Found::Unscoped => return false,
        Found::Elsewhere(stray) if stray.on_this_runtime == 0 => return false,
        Found::Elsewhere(stray) => stray.fail(what),
    };
    let mut open = open();
    match open.iter_mut().find(|s| s.key == key) {
        Some(scope) => {
            scope.bus = bus;
            true
        }
        // The scope closed between the lookup and now: its test is over.
        None => false,
    }
}

impl Stray {
    /// Several threads opened scopes on the caller's runtime.
    pub(crate) fn is_ambiguous(&self) -> bool {
        self.on_this_runtime > 1
    }

    /// Panics: `what` (`get_event_bus()`, …) was called where no scope is
    /// the caller's, with scopes open in the process.
    pub(crate) fn fail(&self, what: &str) -> ! {
        let thread = std::thread::current();
        let thread = thread.name().unwrap_or("unnamed");
        if self.is_ambiguous() {
            panic!(
                "{what} was called from a task of a tokio runtime on which {} threads opened an event-bus \
                 scope (`scope_event_bus`): it cannot tell which test's bus to use. Pass the bus to the \
                 spawned task (`bus.event_bus()`), or give each test its own runtime (`#[tokio::test]` \
                 does)",
                self.on_this_runtime
            )
        }
        let open = self.open;
        panic!(
            "{what} was called outside any event-bus scope while {open} scope(s) are open in this \
             process: this thread (`{thread}`) did not open one, and is not running a task of a tokio \
             runtime that did, so it would get the real bus built from the environment (EVENT_BUS_*: a \
             store on disk, the real handlers, EventBridge). Pass the bus to the code on this thread \
             (`bus.event_bus()`), or open a scope on it: `let _scope = scope_event_bus(&bus);`"
        )
    }
}

/// Makes `bus` the process-wide bus of this test until the returned guard
/// is dropped.
///
/// While the guard lives, [`get_event_bus`](crate::get_event_bus) returns
/// `bus`, and [`set_event_bus`](crate::set_event_bus) /
/// [`reset_event_bus`](crate::reset_event_bus) change this scope only:
/// tests running in parallel each see their own bus, and a test that resets
/// the bus never pulls it from under another. Dropping the guard restores
/// whatever was in force before (scopes nest).
///
/// # Which code is in the scope
///
/// - The thread that opened it.
/// - Opened inside a tokio runtime (in a `#[tokio::test]`, of either
///   flavor): every task spawned on that runtime, on whichever worker thread
///   it runs. Each `#[tokio::test]` has a runtime of its own, so the scope
///   follows the test's `tokio::spawn`ed tasks and nothing else.
///
/// Nothing else silently gets the bus from the environment while a scope is
/// open: `get_event_bus()` **panics** on a thread that is in no scope (a
/// `std::thread` the test started, a runtime of its own) when it would
/// otherwise build the process-wide bus from `EVENT_BUS_*`, and on a
/// runtime on which several tests opened scopes (a runtime shared between
/// tests) — the message says which. Pass the bus to such code instead
/// (`bus.event_bus()`), or open a scope there too. A process-wide bus set
/// explicitly with `set_event_bus` outside any scope is still returned there.
///
/// After `reset_event_bus()` inside a scope, the next `get_event_bus()` in it
/// builds a bus from the environment and keeps it in the scope, as the
/// seed's reset does.
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
/// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let bus = RecordingBus::new();
/// let _scope = scope_event_bus(&bus);
/// place_order(10).await?;
/// // A spawned task, on another worker of a multi-thread runtime, is in the scope too.
/// tokio::spawn(place_order(20)).await??;
/// bus.assert_published::<OrderPlaced>(|e| e.total == 10);
/// bus.assert_published::<OrderPlaced>(|e| e.total == 20);
/// # Ok(())
/// # }
/// ```
pub fn scope_event_bus(bus: impl Into<EventBus>) -> EventBusScope {
    let key = NEXT_KEY.fetch_add(1, Ordering::Relaxed);
    let thread = std::thread::current().id();
    open().push(Open {
        key,
        thread,
        runtime: tokio::runtime::Handle::try_current().ok().map(|h| h.id()),
        bus: Some(bus.into()),
    });
    EventBusScope {
        key,
        thread,
        _thread_bound: PhantomData,
    }
}

/// The guard of [`scope_event_bus`]: the scope closes when it is dropped.
/// It stays on the thread that opened it (it is not `Send`).
#[must_use = "the scope closes when this guard is dropped; bind it: `let _scope = ...`"]
#[derive(Debug)]
pub struct EventBusScope {
    key: u64,
    thread: ThreadId,
    _thread_bound: PhantomData<*const ()>,
}

impl Drop for EventBusScope {
    fn drop(&mut self) {
        // Closes this scope and any opened inside it (later, on this
        // thread) and not yet closed.
        let (key, thread) = (self.key, self.thread);
        open().retain(|s| s.key < key || s.thread != thread);
    }
}
