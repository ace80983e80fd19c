//! Consuming: what SQS, Lambda and HTTP share. A [`Processor`] takes one
//! received message (an EventBridge envelope as JSON), decodes it, routes it
//! on `detail-type` to the bus's handlers (discovered and registered), skips
//! the handlers a [`Dedup`] says already succeeded, and
//! says what happened ([`Processed`]).

use std::future::Future;
use std::sync::Arc;

use events_core::{BusError, EventBus, HandlerOutcome, HandlerStatus, RawEvent, Received};
use tracing::Instrument;

use crate::dedup::Dedup;
use crate::sdk_error::one_line;

#[cfg(any(feature = "lambda", feature = "sqs"))]
pub(crate) mod batch;
mod metrics;
#[cfg(feature = "sqs")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqs")))]
pub mod sqs;

/// What became of one received message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Processed {
    /// Every handler of the event succeeded now (or earlier, per the
    /// deduplication table).
    Handled {
        /// The event name (`detail-type`).
        name: String,
        /// The event id.
        id: String,
        /// Handlers run now.
        ran: usize,
        /// Handlers skipped because they had succeeded before.
        skipped: usize,
    },
    /// Every handler had already succeeded: nothing ran.
    Duplicate {
        /// The event name.
        name: String,
        /// The event id.
        id: String,
    },
    /// No handler here for this event name: nothing to do.
    Unrouted {
        /// The event name.
        name: String,
        /// The event id.
        id: String,
    },
    /// At least one handler failed or panicked: the message must be
    /// delivered again (the handlers that succeeded are marked, so only the
    /// failed ones run again when deduplication is on).
    Failed {
        /// The event name.
        name: String,
        /// The event id.
        id: String,
        /// Each failed handler and its error.
        failures: Vec<(String, String)>,
    },
    /// The message is not an event (not JSON, not an envelope, bad
    /// attributes): the reason, naming the field.
    Undecodable {
        /// What is wrong with it.
        reason: String,
    },
}

impl Processed {
    /// Whether the message is done with (handled, a duplicate, or nobody's):
    /// delete it / report success.
    pub fn is_done(&self) -> bool {
        matches!(
            self,
            Processed::Handled { .. } | Processed::Duplicate { .. } | Processed::Unrouted { .. }
        )
    }
}

/// Decodes, routes and dispatches received events to a bus's handlers, with
/// optional deduplication. Cheap to clone.
#[derive(Clone)]
pub struct Processor {
    bus: EventBus,
    dedup: Option<Arc<dyn Dedup>>,
    destination: Option<Arc<str>>,
}

impl std::fmt::Debug for Processor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Processor")
            .field("dedup", &self.dedup.is_some())
            .finish_non_exhaustive()
    }
}

impl Processor {
    /// Runs the handlers of `bus`, without deduplication.
    pub fn new(bus: EventBus) -> Self {
        Processor {
            bus,
            dedup: None,
            destination: None,
        }
    }

    /// Names what it consumes (the queue, the function, the route) in its
    /// spans' `messaging.destination.name`.
    pub fn with_destination(mut self, destination: impl Into<Arc<str>>) -> Self {
        self.destination = Some(destination.into());
        self
    }

    /// Skips the handlers that `dedup` says already succeeded, and marks
    /// those that succeed.
    pub fn with_dedup(mut self, dedup: Arc<dyn Dedup>) -> Self {
        self.dedup = Some(dedup);
        self
    }

    /// The bus whose handlers run.
    pub fn bus(&self) -> &EventBus {
        &self.bus
    }

    /// Processes one message body: an EventBridge envelope. The body is
    /// read in one pass and the event decoded once, straight into the type
    /// its handlers take ([`EventBus::receive`]).
    pub async fn process(&self, body: &str) -> Processed {
        self.process_decoded(self.bus.receive(body)).await
    }

    /// Processes what [`EventBus::receive`] made of a body (a batch decodes
    /// its bodies first, to link its span to their publishers).
    pub(crate) async fn process_decoded(
        &self,
        decoded: Result<Received, events_core::DecodeError>,
    ) -> Processed {
        match decoded {
            Ok(received) => self.process_received(received).await,
            Err(e) => {
                let processed = undecodable(e.to_string());
                record(&processed);
                processed
            }
        }
    }

    /// What [`with_destination`](Self::with_destination) named, if anything.
    #[cfg(any(feature = "lambda", feature = "sqs"))]
    pub(crate) fn destination(&self) -> Option<&str> {
        self.destination.as_deref()
    }

    /// Processes one decoded event.
    pub async fn process_event(&self, raw: &RawEvent) -> Processed {
        self.process_received(self.bus.receive_raw(raw)).await
    }

    /// Processes one received event, in a `consume` span (event name, id).
    /// (Not an `async fn`: one future less around the work, which is moved
    /// into every caller's future.)
    fn process_received(&self, received: Received) -> impl Future<Output = Processed> + '_ {
        // `consume`, exported as `process {event name}`: with the `otel`
        // feature, a child of the publisher's span.
        let span = received.span(self.destination.as_deref());
        futures_util::FutureExt::map(self.process_inner(received).instrument(span), |processed| {
            record(&processed);
            processed
        })
    }

    async fn process_inner(&self, received: Received) -> Processed {
        let name = received.name().to_owned();
        let id = received.id().as_str().to_owned();
        if !received.is_routed() {
            tracing::debug!("no handler here: done with");
            return Processed::Unrouted { name, id };
        }
        let done: Vec<String> = match &self.dedup {
            Some(dedup) => {
                let handlers: Vec<&str> = received.handler_names().collect();
                match dedup.handled(&id, &handlers).await {
                    Ok(done) if !done.is_empty() && done.len() == handlers.len() => {
                        tracing::debug!("every handler succeeded before: duplicate");
                        return Processed::Duplicate { name, id };
                    }
                    Ok(done) => done,
                    Err(e) => {
                        // Without the table, running again is the safe side
                        // of at-least-once; the message stays for redelivery.
                        let error = one_line(&e);
                        tracing::error!(event = %name, %id, %error, "deduplication table unreadable: reported failed, for delivery again");
                        return Processed::Failed {
                            name,
                            id,
                            failures: vec![("dedup".to_owned(), error)],
                        };
                    }
                }
            }
            None => Vec::new(),
        };
        let skipped = done.len();
        let outcomes = match received
            .dispatch_skipping(|h| done.iter().any(|d| d == h))
            .await
        {
            Ok(outcomes) => outcomes,
            Err(BusError::Decode(e)) => return undecodable(e.to_string()),
            Err(e) => {
                tracing::error!(event = %name, %id, error = %e, "cannot dispatch: reported failed, for delivery again");
                return Processed::Failed {
                    name,
                    id,
                    failures: vec![("dispatch".to_owned(), e.to_string())],
                };
            }
        };
        let ran = outcomes.len();
        // The names of those that succeeded are kept only to be marked.
        let (succeeded, failures) = split(&outcomes, self.dedup.is_some());
        if let Some(dedup) = &self.dedup {
            if !succeeded.is_empty() {
                if let Err(e) = dedup.mark(&id, &succeeded).await {
                    tracing::warn!(event = %name, %id, error = %one_line(&e), "could not mark the handlers that succeeded: a redelivery runs them again");
                }
            }
        }
        if failures.is_empty() {
            Processed::Handled {
                name,
                id,
                ran,
                skipped,
            }
        } else {
            for (handler, error) in &failures {
                // The fields on the line itself: `RUST_LOG=warn` drops the
                // info-level `consume` span. No queue words: the HTTP and
                // Lambda adapters report this too.
                tracing::warn!(event = %name, %id, handler = %handler, %error, "handler failed: reported failed, for delivery again");
            }
            Processed::Failed { name, id, failures }
        }
    }
}

/// Counts `processed` in the consumers' metrics.
fn record(processed: &Processed) {
    let (event, done, why) = match processed {
        Processed::Handled { name, .. } => (name.as_str(), true, "handled"),
        Processed::Duplicate { name, .. } => (name.as_str(), true, "duplicate"),
        Processed::Unrouted { name, .. } => (name.as_str(), true, "unrouted"),
        Processed::Failed { name, .. } => (name.as_str(), false, "failed"),
        Processed::Undecodable { .. } => (
            events_core::metrics::label::UNKNOWN_EVENT,
            false,
            "undecodable",
        ),
    };
    metrics::record(event, done, why);
}

fn undecodable(reason: String) -> Processed {
    tracing::warn!(%reason, "message is not an event: reported as such, not handled");
    Processed::Undecodable { reason }
}

type Split = (Vec<String>, Vec<(String, String)>);

/// The handlers that succeeded (when `keep_succeeded`) and those that
/// failed, with their errors.
fn split(outcomes: &[HandlerOutcome], keep_succeeded: bool) -> Split {
    let mut succeeded = Vec::new();
    let mut failures = Vec::new();
    for o in outcomes {
        match &o.status {
            HandlerStatus::Succeeded if keep_succeeded => succeeded.push(o.handler.to_string()),
            HandlerStatus::Succeeded => {}
            HandlerStatus::Failed(e) => failures.push((o.handler.to_string(), e.clone())),
            HandlerStatus::Panicked(p) => {
                failures.push((o.handler.to_string(), format!("panicked: {p}")))
            }
        }
    }
    (succeeded, failures)
}
