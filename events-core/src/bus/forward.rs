//! Forwarding raw events to the bus without its failover store: what a relay
//! (the PostgreSQL outbox's) needs, since it keeps refused events itself.

use std::future::Future;

use tracing::Instrument;

use super::EventBus;
use crate::envelope::RawEvent;
use crate::publisher::{Accepted, PublishError};

/// The code of the [`PublishError`] [`EventBus::forward`] reports for an event
/// it cannot decode for the in-process handlers of its name (a permanent
/// refusal: the same bytes fail the same way again).
pub const UNDECODABLE: &str = "Undecodable";

impl EventBus {
    /// Hands raw events to the bus **without** failing over to the bus's
    /// store, and says what became of each one: the result has exactly one
    /// entry per event, in order.
    ///
    /// This is [`publish`](Self::publish) for a caller that keeps the events
    /// durably itself until they are accepted (the PostgreSQL outbox relay):
    /// a refused event is reported, never written to the failover store, so
    /// the caller retries it (a [retryable](PublishError::retryable) error)
    /// or keeps it as a dead letter (a [permanent](PublishError::permanent)
    /// one).
    ///
    /// - **eventbridge mode** (a publisher): the events go through the bus's
    ///   [`Publisher`](crate::Publisher), in one call (the EventBridge
    ///   publisher shares them out over PutEvents calls of up to 10, as it
    ///   batches every publish), and each result is the publisher's. An
    ///   event it accepted also runs the in-process handlers when the bus
    ///   [dispatches in process](crate::EventBusBuilder::dispatch_in_process).
    /// - **local mode** (no publisher): each event runs the in-process
    ///   handlers of its name, one event after another, in order, through
    ///   [`receive_raw`](Self::receive_raw) (so everything a received event
    ///   goes through applies), and is reported accepted once they ran
    ///   (awaited, whatever `EVENT_BUS_ASYNC` says: a caller marks an event
    ///   handed over only after its handlers ran). A handler's error
    ///   or panic is isolated and logged, as on `publish`: the event was
    ///   handed over. Each event's handlers run in a `consume` span
    ///   (exported as `process {event name}`, `messaging.system` =
    ///   `events.local`), with the `otel` feature a child of the span that
    ///   published the event when it carries its context: a relayed event's
    ///   handlers join the trace of the request that wrote it. An event that cannot be decoded for its handlers (its
    ///   attributes do not fit the type, or no type of that name is linked)
    ///   is refused for good with the code [`UNDECODABLE`]. An event with no
    ///   handler here is accepted.
    /// - **disabled** (`EVENT_BUS_ENABLED=false`): every event is reported
    ///   accepted and nothing runs, as `publish` drops events on a disabled
    ///   bus.
    ///
    /// The future is `Send + 'static`.
    ///
    /// ```
    /// use events_core::{DomainEvent, Event, EventBus, RawEvent};
    /// # #[derive(DomainEvent, Debug, Clone)]
    /// # #[event(company = "testclean", service = "api", version = 1, resource = "company", action = "created")]
    /// # struct CompanyCreated { company_name: String }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let bus = EventBus::builder().without_store().discover(false).build()?;
    /// let raw = RawEvent::from_event(&Event::new(CompanyCreated { company_name: "Acme".into() }))?;
    /// let results = bus.forward(vec![raw]).await;
    /// assert!(results[0].is_ok());
    /// # Ok(()) }
    /// ```
    pub fn forward(
        &self,
        events: Vec<RawEvent>,
    ) -> impl Future<Output = Vec<Result<Accepted, PublishError>>> + Send + 'static {
        let bus = self.clone();
        let span =
            tracing::info_span!("forward", count = events.len(), mode = %bus.inner.config.mode);
        async move { bus.forward_all(events).await }.instrument(span)
    }

    async fn forward_all(&self, events: Vec<RawEvent>) -> Vec<Result<Accepted, PublishError>> {
        let inner = &self.inner;
        if !inner.config.enabled {
            tracing::debug!(
                count = events.len(),
                "event bus disabled; nothing forwarded"
            );
            return events.iter().map(|_| Ok(Accepted::default())).collect();
        }
        let mut results = match &inner.publisher {
            Some(publisher) => publisher.publish(&events).await,
            None => events.iter().map(|_| Ok(Accepted::default())).collect(),
        };
        // One answer per event, whatever the publisher returned.
        results.truncate(events.len());
        while results.len() < events.len() {
            results.push(Err(PublishError::retryable(
                "",
                "the publisher returned no result for this event",
            )));
        }
        if inner.dispatch_in_process {
            for (raw, result) in events.iter().zip(results.iter_mut()) {
                if result.is_err() {
                    continue;
                }
                // In the context of the event's publish (its `_trace`): the
                // handlers of a relayed event join the request's trace.
                let received = self.receive_raw(raw);
                let span = received.span_of("events.local", None);
                if let Err(error) = received.dispatch().instrument(span).await {
                    tracing::error!(event = %raw.name, id = %raw.id, %error, "event not decodable for its handlers");
                    // Accepted by a remote bus already: only its in-process
                    // handlers missed it, which the error log says.
                    if inner.publisher.is_none() {
                        *result = Err(PublishError::permanent(UNDECODABLE, error.to_string()));
                    }
                }
            }
        }
        results
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::envelope::Event;
    use crate::publisher::{BoxFuture, Publisher};
    use crate::{DomainEvent, Handler, HandlerResult};

    #[derive(DomainEvent, Debug, Clone)]
    #[event(
        company = "testclean",
        service = "forward",
        version = 1,
        resource = "thing",
        action = "made"
    )]
    struct ThingMade {
        n: u32,
    }

    #[derive(Default, Clone)]
    struct Seen(Arc<std::sync::Mutex<Vec<u32>>>);

    impl Handler<ThingMade> for Seen {
        async fn handle(&self, event: &Event<ThingMade>) -> HandlerResult {
            self.0.lock().unwrap().push(event.n);
            Ok(())
        }
    }

    fn raw(n: u32) -> RawEvent {
        RawEvent::from_event(&Event::new(ThingMade { n })).unwrap()
    }

    #[tokio::test]
    async fn local_mode_runs_handlers_in_order_and_refuses_undecodable_events_for_good() {
        let seen = Seen::default();
        let bus = EventBus::builder()
            .without_store()
            .discover(false)
            .register_handler::<ThingMade, _>(seen.clone())
            .build()
            .unwrap();
        let mut bad = raw(9);
        bad.attributes = r#"{"n":"nine"}"#.into();
        let results = bus.forward(vec![raw(1), bad, raw(2)]).await;
        assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
        let refused = results[1].as_ref().unwrap_err();
        assert!(refused.permanent, "{refused:?}");
        assert_eq!(refused.code, UNDECODABLE);
        assert_eq!(*seen.0.lock().unwrap(), [1, 2]);
        // Nothing went to a store: the bus has none, and forward needs none.
        assert!(bus.store().is_none());
    }

    struct Scripted(Vec<Result<Accepted, PublishError>>);

    impl Publisher for Scripted {
        fn name(&self) -> &str {
            "scripted"
        }
        fn publish<'a>(
            &'a self,
            _events: &'a [RawEvent],
        ) -> BoxFuture<'a, Vec<Result<Accepted, PublishError>>> {
            Box::pin(async move { self.0.clone() })
        }
    }

    #[tokio::test]
    async fn eventbridge_mode_reports_the_publishers_answers_and_stores_nothing() {
        let store = Arc::new(crate::MemoryStore::new());
        let bus = EventBus::builder()
            .store(store.clone())
            .discover(false)
            .publisher(Arc::new(Scripted(vec![
                Ok(Accepted {
                    remote_id: Some("r1".into()),
                }),
                Err(PublishError::retryable("ThrottlingException", "slow down")),
                // The third answer is missing.
            ])))
            .build()
            .unwrap();
        let results = bus.forward(vec![raw(1), raw(2), raw(3)]).await;
        assert_eq!(
            results[0].as_ref().unwrap().remote_id.as_deref(),
            Some("r1")
        );
        assert!(!results[1].as_ref().unwrap_err().permanent);
        assert!(!results[2].as_ref().unwrap_err().permanent);
        use crate::store::EventStore;
        assert!(store.peek(10).await.unwrap().is_empty());
        assert!(store.dead_letters(10).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_disabled_bus_accepts_and_runs_nothing_as_publish_drops() {
        let seen = Seen::default();
        let bus = EventBus::builder()
            .without_store()
            .discover(false)
            .enabled(false)
            .register_handler::<ThingMade, _>(seen.clone())
            .build()
            .unwrap();
        let results = bus.forward(vec![raw(1), raw(2)]).await;
        assert_eq!(results.len(), 2);
        assert!(results.iter().all(Result::is_ok));
        assert!(seen.0.lock().unwrap().is_empty());
    }
}
