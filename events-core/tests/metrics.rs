//! The bus's metrics (names, labels, values) as a recorder sees them: publish, failover, dead letter, replay, handler outcomes and durations, the store's gauges.
//!
//! Each test records into its own `metrics-util` debugging recorder
//! (`metrics::with_local_recorder`, on a current-thread runtime so every
//! call lands on the test's thread): no global recorder is shared between
//! tests.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failed test

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex};

use events_core::metrics::{self as m, label};
use events_core::publisher::BoxFuture;
use events_core::{
    Accepted, DomainEvent, Event, EventBus, Handler, HandlerResult, PublishError, Publisher,
    RawEvent,
};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use metrics_util::CompositeKey;

/// What a recorder holds (read once: reading drains the histograms).
type Recorded = Vec<(
    CompositeKey,
    Option<metrics::Unit>,
    Option<metrics::SharedString>,
    DebugValue,
)>;

#[derive(DomainEvent, Debug, Clone)]
#[event(
    company = "acme",
    service = "shop",
    version = 1,
    resource = "order",
    action = "placed"
)]
struct OrderPlaced {
    total: u64,
}

const NAME: &str = "acme.shop.1.event.order.placed";

struct Books;
impl Handler<OrderPlaced> for Books {
    async fn handle(&self, _: &Event<OrderPlaced>) -> HandlerResult {
        Ok(())
    }
}

struct Fails;
impl Handler<OrderPlaced> for Fails {
    async fn handle(&self, _: &Event<OrderPlaced>) -> HandlerResult {
        Err("the ledger is down".into())
    }
}

/// Never answers: cut off by the bus's handler timeout.
struct Hangs;
impl Handler<OrderPlaced> for Hangs {
    async fn handle(&self, _: &Event<OrderPlaced>) -> HandlerResult {
        std::future::pending().await
    }
}

struct Panics;
impl Handler<OrderPlaced> for Panics {
    async fn handle(&self, _: &Event<OrderPlaced>) -> HandlerResult {
        panic!("boom")
    }
}

/// A remote bus answering from a script (then accepting everything).
#[derive(Default)]
struct Scripted(Mutex<VecDeque<PublishError>>);

impl Publisher for Scripted {
    fn name(&self) -> &str {
        "scripted"
    }
    fn publish<'a>(
        &'a self,
        events: &'a [RawEvent],
    ) -> BoxFuture<'a, Vec<Result<Accepted, PublishError>>> {
        let mut script = self.0.lock().unwrap();
        let answers = events
            .iter()
            .map(|_| match script.pop_front() {
                Some(e) => Err(e),
                None => Ok(Accepted::default()),
            })
            .collect();
        Box::pin(std::future::ready(answers))
    }
}

/// Runs `work` on a current-thread runtime with a fresh local recorder;
/// returns what it recorded.
fn recorded<F: Future<Output = ()>>(work: impl FnOnce() -> F) -> Recorded {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(work());
    });
    snapshotter.snapshot().into_vec()
}

/// The value of the metric `name` with exactly `labels`.
fn value<'a>(
    snapshot: &'a Recorded,
    name: &str,
    labels: &[(&str, &str)],
) -> Option<&'a DebugValue> {
    snapshot
        .iter()
        .find(|(key, ..)| {
            let key = key.key();
            let mut have: Vec<(&str, &str)> = key.labels().map(|l| (l.key(), l.value())).collect();
            let mut want = labels.to_vec();
            have.sort_unstable();
            want.sort_unstable();
            key.name() == name && have == want
        })
        .map(|(.., v)| v)
}

fn counter(snapshot: &Recorded, name: &str, labels: &[(&str, &str)]) -> u64 {
    match value(snapshot, name, labels) {
        Some(DebugValue::Counter(n)) => *n,
        other => panic!("{name} {labels:?}: {other:?}"),
    }
}

fn gauge(snapshot: &Recorded, name: &str) -> f64 {
    match value(snapshot, name, &[]) {
        Some(DebugValue::Gauge(v)) => v.into_inner(),
        other => panic!("{name}: {other:?}"),
    }
}

#[test]
fn a_local_publish_counts_the_stored_event_and_each_handler_call_with_its_duration() {
    let snapshot = recorded(|| async {
        let bus = EventBus::builder()
            .in_memory_store()
            .discover(false)
            .register_handler_named::<OrderPlaced, _>("books", Books)
            .register_handler_named::<OrderPlaced, _>("fails", Fails)
            .register_handler_named::<OrderPlaced, _>("panics", Panics)
            .build()
            .unwrap();
        bus.publish(OrderPlaced { total: 1 }).await.unwrap();
        bus.publish(OrderPlaced { total: 2 }).await.unwrap();
    });
    let event = (label::EVENT, NAME);
    assert_eq!(
        counter(
            &snapshot,
            m::PUBLISHED,
            &[event, (label::DELIVERY, "stored")]
        ),
        2
    );
    for (handler, outcome) in [
        ("books", "succeeded"),
        ("fails", "failed"),
        ("panics", "panicked"),
    ] {
        let labels = [event, (label::HANDLER, handler), (label::OUTCOME, outcome)];
        assert_eq!(
            counter(&snapshot, m::HANDLER_CALLS, &labels),
            2,
            "{handler}"
        );
        match value(
            &snapshot,
            m::HANDLER_DURATION,
            &[event, (label::HANDLER, handler)],
        ) {
            Some(DebugValue::Histogram(samples)) => {
                assert_eq!(samples.len(), 2, "{handler}: {samples:?}");
                assert!(samples.iter().all(|s| s.into_inner() >= 0.0));
            }
            other => panic!("{handler}: {other:?}"),
        }
    }
    assert!(value(&snapshot, m::FAILED_OVER, &[event]).is_none());
}

#[test]
fn refused_events_count_as_failed_over_or_dead_lettered_and_replay_counts_and_sets_the_store_gauges(
) {
    let snapshot = recorded(|| async {
        let publisher = Arc::new(Scripted::default());
        publisher.0.lock().unwrap().extend([
            PublishError::retryable("ThrottlingException", "slow down"),
            PublishError::permanent("AccessDeniedException", "no"),
        ]);
        let bus = EventBus::builder()
            .in_memory_store()
            .discover(false)
            .publisher(publisher.clone())
            .build()
            .unwrap();
        bus.publish_batch([
            OrderPlaced { total: 1 },
            OrderPlaced { total: 2 },
            OrderPlaced { total: 3 },
        ])
        .await
        .unwrap();
        let store = bus.store().unwrap();
        let before = m::record_store_gauges(store.as_ref()).await.unwrap();
        assert_eq!((before.pending, before.dead), (1, 1));
        // The gauges as they are now; replay changes them below.
        let pending_then = before.pending;
        assert_eq!(pending_then, 1);
        let report = bus.publish_from_failover(10).await.unwrap();
        assert_eq!(report.sent.len(), 1);
        let after = m::record_store_gauges(store.as_ref()).await.unwrap();
        assert_eq!((after.pending, after.dead), (0, 1));
        assert_eq!(after.oldest_pending_age, std::time::Duration::ZERO);
    });
    let event = (label::EVENT, NAME);
    assert_eq!(
        counter(
            &snapshot,
            m::PUBLISHED,
            &[event, (label::DELIVERY, "published")]
        ),
        1
    );
    assert_eq!(counter(&snapshot, m::FAILED_OVER, &[event]), 1);
    assert_eq!(counter(&snapshot, m::DEAD_LETTERED, &[event]), 1);
    assert_eq!(
        counter(&snapshot, m::REPLAYED, &[event, (label::OUTCOME, "sent")]),
        1
    );
    assert_eq!(gauge(&snapshot, m::STORE_PENDING), 0.0);
    assert_eq!(gauge(&snapshot, m::STORE_DEAD), 1.0);
    assert_eq!(gauge(&snapshot, m::STORE_OLDEST_PENDING_AGE), 0.0);
}

#[test]
fn a_replay_refused_for_good_counts_a_failed_replay_and_a_dead_letter() {
    let snapshot = recorded(|| async {
        let publisher = Arc::new(Scripted::default());
        publisher
            .0
            .lock()
            .unwrap()
            .push_back(PublishError::retryable("ThrottlingException", "slow down"));
        let bus = EventBus::builder()
            .in_memory_store()
            .discover(false)
            .publisher(publisher.clone())
            .max_permanent_failures(1)
            .build()
            .unwrap();
        bus.publish(OrderPlaced { total: 1 }).await.unwrap();
        let gauges = m::record_store_gauges(bus.store().unwrap().as_ref())
            .await
            .unwrap();
        assert_eq!(gauges.pending, 1);
        publisher
            .0
            .lock()
            .unwrap()
            .push_back(PublishError::permanent("AccessDeniedException", "no"));
        let report = bus.publish_from_failover(10).await.unwrap();
        assert_eq!(report.dead_lettered.len(), 1, "{report:?}");
    });
    let event = (label::EVENT, NAME);
    assert_eq!(counter(&snapshot, m::FAILED_OVER, &[event]), 1);
    assert_eq!(
        counter(&snapshot, m::REPLAYED, &[event, (label::OUTCOME, "failed")]),
        1
    );
    assert_eq!(counter(&snapshot, m::DEAD_LETTERED, &[event]), 1);
    assert_eq!(gauge(&snapshot, m::STORE_PENDING), 1.0);
}

#[test]
fn an_in_process_publish_counts_as_in_process_and_a_timed_out_handler_as_failed() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        // A paused clock: the timeout passes as soon as nothing else can run.
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap()
            .block_on(async {
                let bus = EventBus::builder()
                    .without_store()
                    .discover(false)
                    .handler_timeout(std::time::Duration::from_secs(5))
                    .register_handler_named::<OrderPlaced, _>("books", Books)
                    .register_handler_named::<OrderPlaced, _>("hangs", Hangs)
                    .build()
                    .unwrap();
                let out = bus.publish(OrderPlaced { total: 1 }).await.unwrap();
                assert_eq!(out.delivery(), &events_core::Delivery::InProcess);
            });
    });
    let snapshot = snapshotter.snapshot().into_vec();
    let event = (label::EVENT, NAME);
    assert_eq!(
        counter(
            &snapshot,
            m::PUBLISHED,
            &[event, (label::DELIVERY, "in_process")]
        ),
        1
    );
    let calls = |handler, outcome| {
        counter(
            &snapshot,
            m::HANDLER_CALLS,
            &[event, (label::HANDLER, handler), (label::OUTCOME, outcome)],
        )
    };
    assert_eq!(calls("books", "succeeded"), 1);
    assert_eq!(calls("hangs", "failed"), 1, "a timeout is a failure");
    match value(
        &snapshot,
        m::HANDLER_DURATION,
        &[event, (label::HANDLER, "hangs")],
    ) {
        // A timed-out call's duration is recorded too (wall time: the
        // paused clock skipped the wait).
        Some(DebugValue::Histogram(samples)) => {
            assert_eq!(samples.len(), 1);
            assert!(samples[0].into_inner() >= 0.0, "{samples:?}");
        }
        other => panic!("{other:?}"),
    }
}
