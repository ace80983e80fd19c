//! Metric names and labels of the workspace, and the recording the bus does through the `metrics` facade.
//!
//! Every crate of the workspace records through the [`metrics`] facade,
//! with the names and labels below (the one table; the README's "Tracing
//! and metrics" shows the same). No library installs a recorder: a service
//! installs the exporter it wants (`metrics-exporter-prometheus`, an OTLP
//! bridge, …) at start-up, and without one every call is a no-op.
//!
//! | name | kind | labels | what |
//! | --- | --- | --- | --- |
//! | `events_published_total` | counter | `event`, `delivery` (`published`, `stored`, `in_process`) | an event delivered by `publish`: accepted by the remote bus, stored (local mode), or in-process only |
//! | `events_failed_over_total` | counter | `event` | an event the remote bus refused for a reason that may pass, kept pending in the failover store |
//! | `events_dead_lettered_total` | counter | `event` | an event refused for good (on publish, or on replay after its attempts), kept as a dead letter |
//! | `events_replayed_total` | counter | `event`, `outcome` (`sent`, `failed`) | a replay of a stored event: accepted, or failed and still pending |
//! | `events_handler_calls_total` | counter | `event`, `handler`, `outcome` (`succeeded`, `failed`, `panicked`) | one handler call (a timeout is `failed`) |
//! | `events_handler_duration_seconds` | histogram | `event`, `handler` | how long one handler call took |
//! | `events_consumer_received_total` | counter | `event` | a message received by a consumer (SQS, Lambda, HTTP); `event` is `unknown` when it is not an event |
//! | `events_consumer_deleted_total` | counter | `event`, `outcome` (`handled`, `duplicate`, `unrouted`) | a message done with: deleted from SQS, or reported handled to Lambda / the HTTP caller |
//! | `events_consumer_redrive_total` | counter | `event`, `reason` (`failed`, `undecodable`) | a message left for redelivery (then the queue's redrive policy / DLQ) |
//! | `events_store_pending` | gauge | | events waiting in the failover store |
//! | `events_store_dead` | gauge | | dead letters in the store |
//! | `events_store_oldest_pending_age_seconds` | gauge | | age of the oldest pending event (0 when none) |
//! | `events_outbox_pending` | gauge | | rows waiting in the transactional outbox (`events-outbox`) |
//! | `events_outbox_oldest_pending_age_seconds` | gauge | | age of the oldest outbox row waiting (0 when none) |
//!
//! The store's gauges are set by [`record_store_gauges`], which a service
//! calls periodically (the [`Replayer`](crate::bus::Replayer) calls it
//! after each round it replays).
//!
//! ```
//! use events_core::metrics::{self, label};
//! assert_eq!(metrics::PUBLISHED, "events_published_total");
//! assert_eq!(label::EVENT, "event");
//! ```

use std::borrow::Cow;
use std::time::Duration;

use crate::bus::{Delivery, HandlerStatus};
use crate::store::{EventStore, StoreError};

/// Counter: events delivered by `publish` (labels `event`, `delivery`).
pub const PUBLISHED: &str = "events_published_total";
/// Counter: events failed over to the store (label `event`).
pub const FAILED_OVER: &str = "events_failed_over_total";
/// Counter: events kept as dead letters (label `event`).
pub const DEAD_LETTERED: &str = "events_dead_lettered_total";
/// Counter: replays of stored events (labels `event`, `outcome`).
pub const REPLAYED: &str = "events_replayed_total";
/// Counter: handler calls (labels `event`, `handler`, `outcome`).
pub const HANDLER_CALLS: &str = "events_handler_calls_total";
/// Histogram, seconds: handler call durations (labels `event`, `handler`).
pub const HANDLER_DURATION: &str = "events_handler_duration_seconds";
/// Counter: messages received by a consumer (label `event`).
pub const CONSUMER_RECEIVED: &str = "events_consumer_received_total";
/// Counter: messages a consumer is done with (labels `event`, `outcome`).
pub const CONSUMER_DELETED: &str = "events_consumer_deleted_total";
/// Counter: messages a consumer left for redelivery (labels `event`,
/// `reason`).
pub const CONSUMER_REDRIVE: &str = "events_consumer_redrive_total";
/// Gauge: pending events in the store.
pub const STORE_PENDING: &str = "events_store_pending";
/// Gauge: dead letters in the store.
pub const STORE_DEAD: &str = "events_store_dead";
/// Gauge, seconds: age of the store's oldest pending event.
pub const STORE_OLDEST_PENDING_AGE: &str = "events_store_oldest_pending_age_seconds";
/// Gauge: rows waiting in the outbox (recorded by `events-outbox`).
pub const OUTBOX_PENDING: &str = "events_outbox_pending";
/// Gauge, seconds: age of the outbox's oldest waiting row (recorded by
/// `events-outbox`).
pub const OUTBOX_OLDEST_PENDING_AGE: &str = "events_outbox_oldest_pending_age_seconds";

/// Label names and the fixed label values.
pub mod label {
    /// The full event name.
    pub const EVENT: &str = "event";
    /// The handler's name.
    pub const HANDLER: &str = "handler";
    /// How a publish delivered an event.
    pub const DELIVERY: &str = "delivery";
    /// What came of a call, a replay or a message.
    pub const OUTCOME: &str = "outcome";
    /// Why a consumer left a message for redelivery.
    pub const REASON: &str = "reason";
    /// The `event` of a received message that is not an event.
    pub const UNKNOWN_EVENT: &str = "unknown";
}

/// Counts one event `publish` delivered, by how.
pub(crate) fn delivered(event: &'static str, delivery: &Delivery) {
    let how = match delivery {
        Delivery::Published { .. } => "published",
        Delivery::Stored => "stored",
        Delivery::InProcess => "in_process",
        Delivery::FailedOver { .. } => {
            ::metrics::counter!(FAILED_OVER, label::EVENT => event).increment(1);
            return;
        }
        Delivery::DeadLettered { .. } => {
            dead_lettered(event.to_owned());
            return;
        }
        // A disabled bus delivers nothing.
        Delivery::Disabled => return,
    };
    ::metrics::counter!(PUBLISHED, label::EVENT => event, label::DELIVERY => how).increment(1);
}

/// Counts one event that became a dead letter.
pub(crate) fn dead_lettered(event: String) {
    ::metrics::counter!(DEAD_LETTERED, label::EVENT => event).increment(1);
}

/// Counts one replay of a stored event: `sent` or not.
pub(crate) fn replayed(event: String, sent: bool) {
    let outcome = if sent { "sent" } else { "failed" };
    ::metrics::counter!(REPLAYED, label::EVENT => event, label::OUTCOME => outcome).increment(1);
}

/// Counts one handler call and records its duration. A discovered
/// handler's name is borrowed (`'static`), so the only allocations are the
/// two label lists the `metrics` macros build per call.
pub(crate) fn handler_call(
    event: &'static str,
    handler: Cow<'static, str>,
    status: &HandlerStatus,
    took: Duration,
) {
    let outcome = match status {
        HandlerStatus::Succeeded => "succeeded",
        HandlerStatus::Failed(_) => "failed",
        HandlerStatus::Panicked(_) => "panicked",
    };
    ::metrics::counter!(
        HANDLER_CALLS,
        label::EVENT => event,
        label::HANDLER => handler.clone(),
        label::OUTCOME => outcome
    )
    .increment(1);
    ::metrics::histogram!(HANDLER_DURATION, label::EVENT => event, label::HANDLER => handler)
        .record(took.as_secs_f64());
}

/// What [`record_store_gauges`] read and set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StoreGauges {
    /// Pending events.
    pub pending: u64,
    /// Dead letters.
    pub dead: u64,
    /// Age of the oldest pending event (zero when none).
    pub oldest_pending_age: Duration,
}

/// Reads the store's pending and dead counts and the age of its oldest
/// pending event, and sets the gauges `events_store_pending`,
/// `events_store_dead` and `events_store_oldest_pending_age_seconds`.
/// Call it periodically (every scrape interval, say); the
/// [`Replayer`](crate::bus::Replayer) calls it after each replay round.
///
/// # Errors
///
/// The store's error when it cannot be read; the gauges keep their last
/// values.
pub async fn record_store_gauges(store: &dyn EventStore) -> Result<StoreGauges, StoreError> {
    let stats = store.stats().await?;
    let oldest = store.peek(1).await?;
    let oldest_pending_age = oldest
        .first()
        .and_then(|e| (crate::envelope::now() - e.stored_at).to_std().ok())
        .unwrap_or_default();
    let gauges = StoreGauges {
        pending: stats.pending,
        dead: stats.dead,
        oldest_pending_age,
    };
    // Counts far below 2^53: exact as f64.
    #[allow(clippy::cast_precision_loss)]
    {
        ::metrics::gauge!(STORE_PENDING).set(gauges.pending as f64);
        ::metrics::gauge!(STORE_DEAD).set(gauges.dead as f64);
    }
    ::metrics::gauge!(STORE_OLDEST_PENDING_AGE).set(oldest_pending_age.as_secs_f64());
    Ok(gauges)
}
