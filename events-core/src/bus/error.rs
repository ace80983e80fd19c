//! Why the bus could not be built or could not deliver.

use crate::config::{ConfigError, Mode};
use crate::envelope::EventId;
use crate::error::{DecodeError, EncodeError};
use crate::publisher::PublishError;
use crate::registry::DuplicateEventName;
use crate::store::StoreError;

/// Why the bus could not be built or could not deliver.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// A configuration value is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Two types claim one event name.
    #[error(transparent)]
    DuplicateEventName(#[from] DuplicateEventName),
    /// One handler is registered twice for one event.
    #[error("handler `{handler}` is registered twice for `{event}`; register it once (discovered `#[handler]`s need no explicit registration)")]
    DuplicateHandler {
        /// The handler's name.
        handler: String,
        /// The event.
        event: &'static str,
    },
    /// The mode needs a publisher that is not in this program.
    #[error(
        "EVENT_BUS_MODE={mode} needs the EventBridge publisher, which is not built into this program: \
         add the `events-eventbridge` crate and `use events_eventbridge as _;` in main, or pass one with \
         `EventBusBuilder::publisher`"
    )]
    NoPublisher {
        /// The configured mode.
        mode: Mode,
    },
    /// The publisher could not be set up.
    #[error("cannot set up the {mode} publisher: {source}")]
    PublisherSetup {
        /// The configured mode.
        mode: Mode,
        /// The cause.
        #[source]
        source: PublishError,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An event could not be serialized; nothing was published.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// A received event could not be decoded.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// Some events were neither accepted by the remote bus nor stored.
    #[error("{} event(s) were not delivered and not stored (first: {}): {source}", failed.len(), failed.first().map(EventId::as_str).unwrap_or("-"))]
    NotDelivered {
        /// The events that were lost to this call (the caller still has them).
        failed: Vec<EventId>,
        /// The events of the same call that were delivered.
        delivered: Vec<EventId>,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The operation needs a store and the bus has none.
    #[error("this bus has no store (built with `without_store`)")]
    NoStore,
    /// A received event has handlers but no registered type to decode it.
    #[error("no event type named `{name}` is linked into this program")]
    UnknownEvent {
        /// The event name.
        name: String,
    },
    /// `shutdown` timed out with handler tasks still running.
    #[error("shutdown timed out with {pending} handler task(s) still running")]
    ShutdownTimeout {
        /// Tasks still running.
        pending: usize,
    },
}
