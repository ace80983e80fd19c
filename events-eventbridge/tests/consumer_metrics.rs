//! The consumers' metrics as a recorder sees them: every message received, then deleted (handled, duplicate, unrouted) or left for redrive (failed, undecodable), per event name; a redelivered message skipped by deduplication counts as a duplicate.
//!
//! One local `metrics-util` debugging recorder per test
//! (`metrics::with_local_recorder`, on a current-thread runtime).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failed test

use events_core::metrics::{self as m, label};
use events_core::{wire, DomainEvent, Event, EventBus, Handler, HandlerResult, RawEvent};
use events_eventbridge::consumer::Processor;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

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

/// Fails for odd totals.
struct Ledger;
impl Handler<OrderPlaced> for Ledger {
    async fn handle(&self, event: &Event<OrderPlaced>) -> HandlerResult {
        if event.total % 2 == 1 {
            return Err("odd".into());
        }
        Ok(())
    }
}

fn body(raw: &RawEvent) -> String {
    format!(
        r#"{{"version":"0","id":"x","detail-type":"{}","source":"acme.shop","detail":{}}}"#,
        raw.name,
        wire::encode_detail(raw)
    )
}

#[test]
fn each_message_counts_as_received_then_deleted_or_left_for_redrive() {
    const NAME: &str = "acme.shop.1.event.order.placed";
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                let bus = EventBus::builder()
                    .without_store()
                    .discover(false)
                    .register_handler_named::<OrderPlaced, _>("ledger", Ledger)
                    .build()
                    .unwrap();
                let processor = Processor::new(bus);
                for total in [2, 4, 1] {
                    let raw = RawEvent::from_event(&Event::new(OrderPlaced { total })).unwrap();
                    processor.process(&body(&raw)).await;
                }
                let mut other =
                    RawEvent::from_event(&Event::new(OrderPlaced { total: 2 })).unwrap();
                other.name = "acme.shop.1.event.order.shipped".into();
                assert!(processor.process(&body(&other)).await.is_done());
                assert!(!processor.process("not json").await.is_done());
            });
    });
    let snapshot = snapshotter.snapshot().into_vec();
    let count = |name: &str, labels: &[(&str, &str)]| -> u64 {
        let found = snapshot.iter().find(|(key, ..)| {
            let key = key.key();
            let mut have: Vec<(&str, &str)> = key.labels().map(|l| (l.key(), l.value())).collect();
            let mut want = labels.to_vec();
            have.sort_unstable();
            want.sort_unstable();
            key.name() == name && have == want
        });
        match found {
            Some((.., DebugValue::Counter(n))) => *n,
            other => panic!("{name} {labels:?}: {other:?}"),
        }
    };
    let event = (label::EVENT, NAME);
    let shipped = (label::EVENT, "acme.shop.1.event.order.shipped");
    let unknown = (label::EVENT, label::UNKNOWN_EVENT);
    assert_eq!(count(m::CONSUMER_RECEIVED, &[event]), 3);
    assert_eq!(count(m::CONSUMER_RECEIVED, &[shipped]), 1);
    assert_eq!(count(m::CONSUMER_RECEIVED, &[unknown]), 1);
    assert_eq!(
        count(m::CONSUMER_DELETED, &[event, (label::OUTCOME, "handled")]),
        2
    );
    assert_eq!(
        count(
            m::CONSUMER_DELETED,
            &[shipped, (label::OUTCOME, "unrouted")]
        ),
        1
    );
    assert_eq!(
        count(m::CONSUMER_REDRIVE, &[event, (label::REASON, "failed")]),
        1
    );
    assert_eq!(
        count(
            m::CONSUMER_REDRIVE,
            &[unknown, (label::REASON, "undecodable")]
        ),
        1
    );
    // The handler calls of the consumed events, too.
    assert_eq!(
        count(
            m::HANDLER_CALLS,
            &[
                event,
                (label::HANDLER, "ledger"),
                (label::OUTCOME, "failed")
            ]
        ),
        1
    );
}

#[test]
fn a_redelivered_message_skipped_by_deduplication_counts_as_a_duplicate() {
    const NAME: &str = "acme.shop.1.event.order.placed";
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                let bus = EventBus::builder()
                    .without_store()
                    .discover(false)
                    .register_handler_named::<OrderPlaced, _>("ledger", Ledger)
                    .build()
                    .unwrap();
                let processor = Processor::new(bus).with_dedup(std::sync::Arc::new(
                    events_eventbridge::dedup::MemoryDedup::default(),
                ));
                let raw = RawEvent::from_event(&Event::new(OrderPlaced { total: 2 })).unwrap();
                // Delivered, then delivered again (SQS is at least once).
                assert!(processor.process(&body(&raw)).await.is_done());
                assert!(processor.process(&body(&raw)).await.is_done());
            });
    });
    let snapshot = snapshotter.snapshot().into_vec();
    let count = |name: &str, labels: &[(&str, &str)]| -> Option<u64> {
        snapshot.iter().find_map(|(key, .., value)| {
            let key = key.key();
            let mut have: Vec<(&str, &str)> = key.labels().map(|l| (l.key(), l.value())).collect();
            let mut want = labels.to_vec();
            have.sort_unstable();
            want.sort_unstable();
            match value {
                DebugValue::Counter(n) if key.name() == name && have == want => Some(*n),
                _ => None,
            }
        })
    };
    let event = (label::EVENT, NAME);
    assert_eq!(count(m::CONSUMER_RECEIVED, &[event]), Some(2));
    assert_eq!(
        count(m::CONSUMER_DELETED, &[event, (label::OUTCOME, "handled")]),
        Some(1)
    );
    assert_eq!(
        count(m::CONSUMER_DELETED, &[event, (label::OUTCOME, "duplicate")]),
        Some(1)
    );
    // The handler ran once.
    assert_eq!(
        count(
            m::HANDLER_CALLS,
            &[
                event,
                (label::HANDLER, "ledger"),
                (label::OUTCOME, "succeeded")
            ]
        ),
        Some(1)
    );
}
