//! Publishing: each event is delivered (stored, or sent to the remote bus and
//! failed over or dead-lettered), then dispatched to in-process handlers.

use std::future::Future;
use std::sync::Arc;

use tracing::Instrument;

use super::{
    BatchOutcome, BusError, Delivery, EventBus, HandlerOutcome, HandlerStatus, PublishOutcome,
};
use crate::aggregate::Recorder;
use crate::envelope::{AnyEvent, Event, EventId, RawEvent};
use crate::error::one_line;
use crate::event::DomainEvent;
use crate::publisher::{Accepted, PublishError, Publisher};
use crate::store::{EventStore, StoreError};
use crate::trace::TraceContext;

impl EventBus {
    /// Publishes one event. A bare `E` gets its id and `occurred_on` now; an
    /// `Event<E>` keeps its own.
    ///
    /// The future is `Send + 'static` (it holds a clone of the bus), so it
    /// can be spawned.
    ///
    /// # Errors
    ///
    /// [`BusError::Encode`] when the event cannot be serialized (nothing is
    /// published); [`BusError::NotDelivered`] when the remote bus did not take
    /// it and the store could not keep it either. A handler's failure is not an
    /// error: it is in the outcome.
    pub fn publish<E: DomainEvent>(
        &self,
        event: impl Into<Event<E>>,
    ) -> impl Future<Output = Result<PublishOutcome, BusError>> + Send + 'static {
        let bus = self.clone();
        let event = AnyEvent::new(event.into());
        async move {
            let events = std::slice::from_ref(&event);
            let Some(delivery) = bus.deliver(events).await?.next() else {
                return Err(BusError::NotDelivered {
                    failed: vec![event.id().clone()],
                    delivered: Vec::new(),
                    source: "internal error: no delivery for the published event".into(),
                });
            };
            // The event is ours: its id moves into the outcome.
            let AnyEvent {
                id, name, shared, ..
            } = event;
            let mut out = PublishOutcome::new(id, name, bus.reported(delivery));
            crate::metrics::delivered(out.name, &out.delivery);
            if bus.dispatches(&out) {
                bus.dispatch(shared, &mut out).await;
            }
            if let Some(store) = bus.journal() {
                if out.spawned == 0 {
                    record_failures(store.as_ref(), failures_of(&out).into_iter().collect()).await;
                    mark_handled(store.as_ref(), vec![out.id.clone()]).await;
                }
            }
            Ok(out)
        }
    }

    /// Publishes several events, of one or many types, in order. Bare events
    /// (`E`) and envelopes (`Event<E>`) both convert into [`AnyEvent`].
    ///
    /// The future is `Send + 'static`, like [`Self::publish`]'s.
    ///
    /// # Errors
    ///
    /// As [`publish`](Self::publish)'s, for the first event at fault;
    /// [`BusError::NotDelivered`] lists the events lost to this call.
    pub fn publish_batch<I>(
        &self,
        events: I,
    ) -> impl Future<Output = Result<BatchOutcome, BusError>> + Send + 'static
    where
        I: IntoIterator,
        I::Item: Into<AnyEvent>,
    {
        let bus = self.clone();
        let events: Vec<AnyEvent> = events.into_iter().map(Into::into).collect();
        async move { bus.publish_all(&events).await }
    }

    /// Publishes everything `recorder` holds; it keeps only the events that
    /// were not delivered (so a failed publish can be retried without
    /// duplicates). A disabled bus (`EVENT_BUS_ENABLED=false`) drops them, as
    /// configured, and reports [`Delivery::Disabled`].
    ///
    /// # Errors
    ///
    /// As [`publish_batch`](Self::publish_batch)'s; the events not delivered
    /// stay in `recorder`.
    pub async fn publish_recorded(
        &self,
        recorder: &mut Recorder,
    ) -> Result<BatchOutcome, BusError> {
        let result = self.publish_all(recorder.events()).await;
        match &result {
            Ok(_) => recorder.clear(),
            Err(BusError::NotDelivered { failed, .. }) => {
                recorder.retain(|e| failed.contains(e.id()))
            }
            Err(_) => {}
        }
        result
    }

    async fn publish_all(&self, events: &[AnyEvent]) -> Result<BatchOutcome, BusError> {
        let deliveries = self.deliver(events).await?;
        let mut outcomes = Vec::with_capacity(events.len());
        for (event, delivery) in events.iter().zip(deliveries) {
            let mut out =
                PublishOutcome::new(event.id().clone(), event.name(), self.reported(delivery));
            crate::metrics::delivered(out.name, &out.delivery);
            if self.dispatches(&out) {
                self.dispatch(event.shared.clone(), &mut out).await;
            }
            outcomes.push(out);
        }
        if let Some(store) = self.journal() {
            let handled: Vec<EventId> = outcomes
                .iter()
                .filter(|out| out.spawned == 0)
                .map(|out| out.id.clone())
                .collect();
            if !handled.is_empty() {
                let failed = outcomes
                    .iter()
                    .filter(|out| out.spawned == 0)
                    .flat_map(failures_of)
                    .collect();
                record_failures(store.as_ref(), failed).await;
                mark_handled(store.as_ref(), handled).await;
            }
        }
        Ok(BatchOutcome { events: outcomes })
    }

    /// Delivers every event of one call, or reports which were not: nothing
    /// to do on a disabled bus or one without store and publisher; otherwise
    /// stored (local mode) or sent and, if refused, kept (remote mode), in a
    /// `publish` span.
    async fn deliver(&self, events: &[AnyEvent]) -> Result<Deliveries, BusError> {
        let inner = &self.inner;
        if !inner.config.enabled {
            tracing::debug!(
                count = events.len(),
                "event bus disabled; nothing published"
            );
            return Ok(Deliveries::Same {
                delivery: Delivery::Disabled,
                left: events.len(),
            });
        }
        let span = |system: &str| {
            let span = tracing::info_span!(
                "publish",
                count = events.len(),
                mode = %inner.config.mode,
                otel.name = tracing::field::Empty,
                otel.kind = "producer",
                messaging.system = system,
                messaging.operation.name = "publish",
                messaging.operation.type = "send",
                messaging.message.id = tracing::field::Empty,
                messaging.batch.message_count = tracing::field::Empty,
            );
            name_publish_span(&span, events);
            span
        };
        // The store and remote paths wait on I/O; boxed, they do not make
        // every publish future (the in-process one too) as large as theirs.
        match (&inner.publisher, &inner.store) {
            (Some(publisher), store) => {
                let span = span(publisher.name());
                let trace = crate::trace::capture(&span);
                Box::pin(send(publisher.as_ref(), store.as_deref(), events, trace).instrument(span))
                    .await
            }
            (None, Some(store)) => {
                let span = span("events.local");
                let trace = crate::trace::capture(&span);
                let local = self.journal().is_some();
                Box::pin(keep(store.as_ref(), events, trace, local).instrument(span)).await
            }
            (None, None) => Ok(Deliveries::Same {
                delivery: Delivery::InProcess,
                left: events.len(),
            }),
        }
    }

    /// Local mode: the store whose journal of handled events takes an event
    /// once its handlers ran, so it leaves the queue (spawned handlers mark
    /// their event themselves once done).
    pub(super) fn journal(&self) -> Option<&Arc<dyn EventStore>> {
        let inner = &self.inner;
        match (&inner.publisher, &inner.store) {
            (None, Some(store)) if inner.dispatch_in_process && inner.config.enabled => Some(store),
            _ => None,
        }
    }

    /// Whether a delivered event goes to the in-process handlers: not when
    /// the bus leaves them to consumers or is disabled. (A test, not an
    /// `async fn` around `dispatch`: one state machine less in every publish
    /// future.)
    /// `delivery` as the caller sees it: the test kit's local mode reports
    /// what its recorder accepted as stored.
    fn reported(&self, delivery: Delivery) -> Delivery {
        match delivery {
            Delivery::Published { .. } if self.inner.accepted_as_stored => Delivery::Stored,
            other => other,
        }
    }

    fn dispatches(&self, out: &PublishOutcome) -> bool {
        self.inner.dispatch_in_process && out.delivery != Delivery::Disabled
    }
}

/// How each event of a call was delivered, without a `Vec` when all were
/// delivered alike.
enum Deliveries {
    /// `left` more events, all delivered as `delivery`.
    Same { delivery: Delivery, left: usize },
    /// One delivery per event.
    Each(std::vec::IntoIter<Delivery>),
}

impl Iterator for Deliveries {
    type Item = Delivery;
    fn next(&mut self) -> Option<Delivery> {
        match self {
            Deliveries::Same { left: 0, .. } => None,
            Deliveries::Same { delivery, left } => {
                *left -= 1;
                Some(delivery.clone())
            }
            Deliveries::Each(each) => each.next(),
        }
    }
}

/// Names an enabled `publish` span as OpenTelemetry's messaging
/// conventions do: `publish {event name}` (the first event's, for a
/// batch), the event id of a single event, the count of a batch. Nothing
/// for a disabled span (no subscriber wants it: nothing is formatted).
fn name_publish_span(span: &tracing::Span, events: &[AnyEvent]) {
    if span.is_disabled() {
        return;
    }
    match events {
        [] => {}
        [one] => {
            span.record("otel.name", format!("publish {}", one.name()));
            span.record("messaging.message.id", one.id().as_str());
        }
        [first, ..] => {
            span.record("otel.name", format!("publish {}", first.name()));
            span.record("messaging.batch.message_count", events.len());
        }
    }
}

/// Moves handled events from the queue to the journal; on failure they stay
/// pending: nothing is lost.
pub(super) async fn mark_handled(store: &dyn EventStore, ids: Vec<EventId>) {
    if let Err(error) = store.mark_handled(ids).await {
        tracing::warn!(%error, "handled events not marked in the store");
    }
}

/// The failed handlers of one event, as the store keeps them: its id and
/// `handler `name`: error` (several joined by `; `).
pub(super) fn failures_of(out: &PublishOutcome) -> Option<(EventId, String)> {
    failure_text(out.failures()).map(|text| (out.id.clone(), text))
}

/// `handler `name` failed: error; ...`, or `None` when every handler
/// succeeded.
pub(super) fn failure_text<'a>(
    failures: impl Iterator<Item = &'a HandlerOutcome>,
) -> Option<String> {
    let text: Vec<String> = failures
        .map(|f| match &f.status {
            HandlerStatus::Panicked(message) => {
                format!("handler `{}` panicked: {message}", f.handler)
            }
            HandlerStatus::Failed(message) => {
                format!("handler `{}` failed: {message}", f.handler)
            }
            HandlerStatus::Succeeded => String::new(),
        })
        .filter(|t| !t.is_empty())
        .collect();
    (!text.is_empty()).then(|| text.join("; "))
}

/// Local mode: a failed handler leaves its error on its event (the store's
/// last error and attempt, shown by `events list --handled`), before the
/// event is marked handled. A failure to record it loses nothing.
pub(super) async fn record_failures(store: &dyn EventStore, failed: Vec<(EventId, String)>) {
    for (id, error) in failed {
        if let Err(e) = store.record_failure(id.clone(), error, false).await {
            tracing::warn!(%id, error = %one_line(&e), "handler failure not recorded in the store");
        }
    }
}

/// The raw events of a publish, each with the publish's trace context.
fn encode(events: &[AnyEvent], trace: Option<TraceContext>) -> Result<Vec<RawEvent>, BusError> {
    Ok(events
        .iter()
        .map(|e| {
            e.to_raw().map(|mut raw| {
                raw.trace.clone_from(&trace);
                raw
            })
        })
        .collect::<Result<Vec<_>, _>>()?)
}

/// Stores every event durably, each with the publish's trace context;
/// `local`: as local-mode events, whose handlers run in this process (never
/// sent to a remote bus).
async fn keep(
    store: &dyn EventStore,
    events: &[AnyEvent],
    trace: Option<TraceContext>,
    local: bool,
) -> Result<Deliveries, BusError> {
    let raws = encode(events, trace)?;
    let stored = if local {
        store.store_local(raws).await
    } else {
        store.store(raws).await
    };
    match stored {
        Ok(()) => {
            for e in events {
                tracing::info!(event = e.name(), id = %e.id(), "event stored");
            }
            Ok(Deliveries::Same {
                delivery: Delivery::Stored,
                left: events.len(),
            })
        }
        Err(source) => {
            tracing::error!(error = %one_line(&source), count = events.len(), "events not stored");
            Err(BusError::NotDelivered {
                failed: events.iter().map(|e| e.id().clone()).collect(),
                delivered: Vec::new(),
                source: Box::new(source),
            })
        }
    }
}

/// An event the remote bus refused for good, to record as a dead letter.
struct DeadLetter {
    id: EventId,
    error: String,
}

/// Remote mode: sends every event; keeps the refused ones in the store,
/// pending (retryable errors) or as dead letters (permanent ones).
async fn send(
    publisher: &dyn Publisher,
    store: Option<&dyn EventStore>,
    events: &[AnyEvent],
    trace: Option<TraceContext>,
) -> Result<Deliveries, BusError> {
    let raws = encode(events, trace)?;
    let deliveries = deliveries_of(publisher.publish(&raws).await, raws.len());
    let mut refused = Vec::new();
    let mut dead = Vec::new();
    let mut failed_over = Vec::new();
    for (raw, delivery) in raws.into_iter().zip(&deliveries) {
        match delivery {
            Delivery::FailedOver { error } => {
                tracing::warn!(event = %raw.name, id = %raw.id, %error, "publish failed; failing over to the store");
                failed_over.push((raw.id.clone(), error.clone()));
                refused.push(raw);
            }
            Delivery::DeadLettered { error } => {
                tracing::error!(event = %raw.name, id = %raw.id, %error, "publish refused for good; keeping the event as a dead letter");
                dead.push(DeadLetter {
                    id: raw.id.clone(),
                    error: error.clone(),
                });
                refused.push(raw);
            }
            // Accepted by the remote bus: nothing to keep.
            _ => {}
        }
    }
    if refused.is_empty() {
        return Ok(Deliveries::Each(deliveries.into_iter()));
    }
    let refused_ids: Vec<EventId> = refused.iter().map(|r| r.id.clone()).collect();
    let kept = match store {
        Some(store) => keep_refused(store, refused, dead, failed_over)
            .await
            .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>),
        None => Err("the bus has no failover store".into()),
    };
    match kept {
        Ok(()) => Ok(Deliveries::Each(deliveries.into_iter())),
        Err(source) => {
            tracing::error!(error = %one_line(source.as_ref()), count = refused_ids.len(), "events neither published nor stored");
            Err(BusError::NotDelivered {
                delivered: events
                    .iter()
                    .map(|e| e.id().clone())
                    .filter(|id| !refused_ids.contains(id))
                    .collect(),
                failed: refused_ids,
                source,
            })
        }
    }
}

/// Keeps the refused events: the retryable ones pending, with the failed
/// attempt and its error recorded (`failed_over`) so `events list` shows why
/// they wait; the permanent ones written straight into the dead letters
/// (each in one atomic step).
async fn keep_refused(
    store: &dyn EventStore,
    refused: Vec<RawEvent>,
    dead: Vec<DeadLetter>,
    failed_over: Vec<(EventId, String)>,
) -> Result<(), StoreError> {
    let (dead_raws, pending): (Vec<RawEvent>, Vec<RawEvent>) = refused
        .into_iter()
        .partition(|raw| dead.iter().any(|d| d.id == raw.id));
    if !pending.is_empty() {
        store.store(pending).await?;
        // The events are stored: a failure to record the attempt loses
        // nothing (the next replay records its own), so it only warns.
        for (id, error) in failed_over {
            if let Err(e) = store.record_failure(id.clone(), error, false).await {
                tracing::warn!(%id, error = %one_line(&e), "failover attempt not recorded in the store");
            }
        }
    }
    for raw in dead_raws {
        let error = dead
            .iter()
            .find(|d| d.id == raw.id)
            .map(|d| d.error.clone())
            .unwrap_or_default();
        store.store_dead(vec![raw], error).await?;
    }
    Ok(())
}

/// What the remote bus's answers mean, one [`Delivery`] per event sent
/// (`count`): accepted → [`Delivery::Published`], a permanent error →
/// [`Delivery::DeadLettered`], a retryable one or no answer at all →
/// [`Delivery::FailedOver`]. Publish and replay both read answers through it.
pub(super) fn deliveries_of(
    results: Vec<Result<Accepted, PublishError>>,
    count: usize,
) -> Vec<Delivery> {
    let mut results = results.into_iter();
    (0..count)
        .map(|_| match results.next() {
            Some(Ok(Accepted { remote_id })) => Delivery::Published { remote_id },
            Some(Err(e)) if e.permanent => Delivery::DeadLettered {
                error: e.to_string(),
            },
            Some(Err(e)) => Delivery::FailedOver {
                error: e.to_string(),
            },
            None => Delivery::FailedOver {
                error: "the publisher returned no result for this event".to_owned(),
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_become_deliveries_in_order_and_a_missing_answer_fails_over() {
        let deliveries = deliveries_of(
            vec![
                Ok(Accepted {
                    remote_id: Some("r-1".into()),
                }),
                Err(PublishError::permanent("AccessDeniedException", "no")),
                Err(PublishError::retryable("ThrottlingException", "slow down")),
            ],
            4,
        );
        assert_eq!(
            deliveries,
            [
                Delivery::Published {
                    remote_id: Some("r-1".into())
                },
                Delivery::DeadLettered {
                    error: "AccessDeniedException: no".into()
                },
                Delivery::FailedOver {
                    error: "ThrottlingException: slow down".into()
                },
                Delivery::FailedOver {
                    error: "the publisher returned no result for this event".into()
                },
            ]
        );
    }
}
