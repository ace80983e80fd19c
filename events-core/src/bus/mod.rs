//! The bus: publishes events, keeps them durable, and dispatches them to
//! handlers (SPEC §5–§7).
//!
//! # Dispatch
//!
//! All handlers of an event run, **one after another**: discovered handlers
//! first, ordered by their names (module path and function or type name, so
//! the order is the same in every build), then explicit ones in registration
//! order. In order,
//! not concurrently, because handlers of one event often touch the same rows
//! or services, logs then read in a stable order, and one event's handlers
//! never compete with each other for a connection pool. Publish with
//! `EVENT_BUS_ASYNC=true` (or [`EventBusBuilder::async_handlers`]) to take
//! handler time off the publisher's path; events then dispatch concurrently
//! with each other.
//!
//! A handler's `Err` or panic is isolated: it is logged with the event name,
//! id and handler name, reported in the [`PublishOutcome`], and the other
//! handlers still run. The bus stays usable.
//!
//! # Delivery
//!
//! `publish` returns `Ok` only once each event is delivered: stored durably
//! (local mode), or accepted by the remote bus or else stored (eventbridge
//! mode): an event refused for a reason that may pass (throttling, an outage)
//! waits in the failover store for replay ([`Delivery::FailedOver`]), one
//! refused for good (too large, access denied) is kept as a dead letter
//! ([`Delivery::DeadLettered`]). If an event can be neither, `publish`
//! returns [`BusError::NotDelivered`] naming it, and its handlers do not run.
//!
//! # Where things live
//!
//! The bus and its accessors here; [`BusError`] in `error`; what a publish
//! reports ([`PublishOutcome`], [`Delivery`], …) in `outcome`; the
//! [`EventBusBuilder`] in `builder`; `publish` in `publish`; handlers and
//! received events in `dispatch`; the failover store's replay and the
//! background [`Replayer`] in `replay`; the process-wide bus in `global`.

use std::sync::Arc;

use tokio_util::task::TaskTracker;

use crate::config::BusConfig;
use crate::handler::HandlerEntry;
use crate::publisher::Publisher;
use crate::registry::EventType;
use crate::store::EventStore;

mod builder;
mod dispatch;
pub(crate) mod error;
mod forward;
mod global;
mod outcome;
mod publish;
mod recover;
mod replay;
mod versions;

pub use builder::EventBusBuilder;
pub use dispatch::Received;
pub use error::BusError;
pub use forward::UNDECODABLE;
pub use global::{get_event_bus, reset_event_bus, set_event_bus};
#[allow(deprecated)]
#[doc(hidden)]
pub use outcome::HandlerOutcomes;
pub use outcome::{
    BatchOutcome, Delivery, DispatchOutcome, HandlerOutcome, HandlerStatus, PublishOutcome,
};
pub use replay::{ReplayReport, Replayer, ReplayerOptions};

/// The event bus. Cheap to clone: clones share one bus.
#[derive(Clone)]
pub struct EventBus {
    inner: Arc<Inner>,
}

struct Inner {
    config: BusConfig,
    /// Keyed by event name, looked up on every publish: hashed with
    /// foldhash, several times faster than SipHash on names this long, and
    /// safe here since the keys are fixed when the bus is built.
    handlers: versions::Routes,
    store: Option<Arc<dyn EventStore>>,
    publisher: Option<Arc<dyn Publisher>>,
    dispatch_in_process: bool,
    /// Report accepted events as [`Delivery::Stored`] (the test kit's
    /// local mode).
    accepted_as_stored: bool,
    max_permanent_failures: u32,
    tasks: TaskTracker,
}

/// The handlers of one event name, in dispatch order, and their outcomes
/// when all succeed (what most publishes report, built once here).
pub(crate) struct Route {
    pub(crate) handlers: Arc<[HandlerEntry]>,
    pub(crate) succeeded: Arc<[HandlerOutcome]>,
    /// The event type, which decodes received events for the handlers
    /// (`None` if no `#[derive(DomainEvent)]` registered the name).
    pub(crate) event_type: Option<&'static EventType>,
    /// The decodings for handlers of several versions (upcasting), when
    /// the route has handlers of newer types.
    pub(crate) versions: Option<Arc<versions::RouteVersions>>,
}

impl Route {
    pub(crate) fn new(handlers: Vec<HandlerEntry>, event_type: Option<&'static EventType>) -> Self {
        let succeeded = handlers
            .iter()
            .map(|h| HandlerOutcome {
                handler: h.name.clone(),
                status: HandlerStatus::Succeeded,
            })
            .collect();
        Route {
            handlers: Arc::from(handlers),
            succeeded,
            event_type,
            versions: None,
        }
    }
}

impl Drop for Inner {
    /// The last clone of the bus is gone: spawned handler work still running
    /// goes on without anyone to wait for it, so say so.
    fn drop(&mut self) {
        let pending = self.tasks.len();
        if pending > 0 {
            tracing::warn!(
                pending,
                "event bus dropped with {pending} spawned handler task(s) still running; \
                 call `bus.shutdown(timeout)` before dropping it so their work is not lost"
            );
        }
    }
}

impl std::fmt::Debug for EventBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventBus")
            .field("config", &self.inner.config)
            .field(
                "handlers",
                &self
                    .inner
                    .handlers
                    .values()
                    .map(|r| r.handlers.len())
                    .sum::<usize>(),
            )
            .field("store", &self.inner.store.is_some())
            .field(
                "publisher",
                &self.inner.publisher.as_ref().map(|p| p.name().to_owned()),
            )
            .finish()
    }
}

impl EventBus {
    /// A builder starting from the environment (`EVENT_BUS_*`, SPEC §6):
    /// what [`EventBus::from_env`] builds, plus whatever you add, such as
    /// handlers with dependencies. Settings made on the builder override
    /// the environment.
    ///
    /// ```no_run
    /// use events_core::{DomainEvent, Event, EventBus, Handler, HandlerResult};
    /// # #[derive(DomainEvent, Debug, Clone)]
    /// # #[event(company = "acme", service = "shop", version = 1, resource = "order", action = "placed")]
    /// # struct OrderPlaced { total: u64 }
    ///
    /// struct Ledger { account: String }
    ///
    /// impl Handler<OrderPlaced> for Ledger {
    ///     async fn handle(&self, event: &Event<OrderPlaced>) -> HandlerResult {
    ///         println!("book {} on {}", event.total, self.account);
    ///         Ok(())
    ///     }
    /// }
    ///
    /// # async fn start() -> Result<(), events_core::BusError> {
    /// let bus = EventBus::builder_from_env()?
    ///     .register_handler(Ledger { account: "sales".into() })
    ///     .connect()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    ///
    /// `connect` also finds the publisher `EVENT_BUS_MODE=eventbridge` needs;
    /// `build` does the same without it (local mode, or a publisher you set).
    ///
    /// # Errors
    ///
    /// [`BusError::Config`] when a variable `EVENT_BUS_*` has a value that is
    /// not valid.
    pub fn builder_from_env() -> Result<EventBusBuilder, BusError> {
        Ok(EventBusBuilder::new(BusConfig::from_env()?))
    }

    /// [`builder_from_env`](Self::builder_from_env) with the variables read
    /// through `lookup` instead of the process environment (a test's map, a
    /// file): `EVENT_BUS_*` for the configuration and
    /// `EVENT_BUS_STORE_RETENTION` for the store. Tests pass their
    /// variables this way rather than changing the process environment.
    ///
    /// ```
    /// use events_core::EventBus;
    ///
    /// let bus = EventBus::builder_from_lookup(|var| (var == "EVENT_BUS_ASYNC").then(|| "true".to_owned()))?
    ///     .in_memory_store()
    ///     .build()?;
    /// assert!(bus.config().async_handlers);
    /// # Ok::<(), events_core::BusError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`BusError::Config`] when a variable has a value that is not valid,
    /// [`BusError::Store`] when `EVENT_BUS_STORE_RETENTION` is not valid.
    pub fn builder_from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<EventBusBuilder, BusError> {
        let config = BusConfig::from_lookup(&lookup)?;
        let retention = match lookup(crate::store::RETENTION_VAR) {
            Some(text) if !text.trim().is_empty() => {
                crate::store::Retention::parse(&text).map_err(crate::store::StoreError::Config)?
            }
            _ => crate::store::Retention::default(),
        };
        Ok(
            EventBusBuilder::new(config).store_options(crate::store::SqliteOptions {
                retention,
                ..crate::store::SqliteOptions::default()
            }),
        )
    }

    /// [`from_env`](Self::from_env) with the variables read through
    /// `lookup` ([`builder_from_lookup`](Self::builder_from_lookup)).
    ///
    /// # Errors
    ///
    /// The errors of [`builder_from_lookup`](Self::builder_from_lookup) and
    /// of [`EventBusBuilder::connect`].
    pub async fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, BusError> {
        EventBus::builder_from_lookup(lookup)?.connect().await
    }

    /// A builder with the built-in defaults (local mode, SQLite store at
    /// `.events-bus/events.db`, handler discovery on). It does **not** read
    /// `EVENT_BUS_*`: a service configured by its environment starts from
    /// [`EventBus::builder_from_env`] instead.
    pub fn builder() -> EventBusBuilder {
        EventBusBuilder::new(BusConfig::default())
    }

    /// Builds the bus from the environment (SPEC §6), with every discovered
    /// handler, and the publisher `EVENT_BUS_MODE` asks for. The one start-up
    /// call of a twelve-factor service; [`EventBus::builder_from_env`] is the
    /// same with room for more (handlers with dependencies, a store).
    ///
    /// # Errors
    ///
    /// The errors of [`builder_from_env`](Self::builder_from_env) and of
    /// [`EventBusBuilder::connect`].
    pub async fn from_env() -> Result<Self, BusError> {
        EventBus::builder_from_env()?.connect().await
    }

    /// The configuration in force.
    pub fn config(&self) -> &BusConfig {
        &self.inner.config
    }

    /// The store, if the bus has one.
    pub fn store(&self) -> Option<&Arc<dyn EventStore>> {
        self.inner.store.as_ref()
    }

    /// Names of the handlers of `event_name`, in dispatch order.
    pub fn handlers_of(&self, event_name: &str) -> Vec<&str> {
        self.inner
            .handlers
            .get(event_name)
            .map(|r| r.handlers.iter().map(|h| h.name.as_ref()).collect())
            .unwrap_or_default()
    }
}
