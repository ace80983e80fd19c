//! What a new user meets in the first hour: the start-up logs naming each
//! event's handlers (info) and the event types without one (debug), the
//! warning of async mode without a tokio runtime (once), and iterating a
//! [`BatchOutcome`](events_core::bus::BatchOutcome).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failed test

use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};

use events_core::bus::Delivery;
use events_core::{DomainEvent, Event, EventBus, Handler, HandlerResult};

#[derive(DomainEvent, Debug, Clone)]
#[event(
    company = "acme",
    service = "firsthour",
    version = 1,
    resource = "order",
    action = "placed"
)]
struct OrderPlaced {
    total: u64,
}

/// Linked into the program, with no handler anywhere.
#[derive(DomainEvent, Debug, Clone)]
#[event(
    company = "acme",
    service = "firsthour",
    version = 1,
    resource = "parcel",
    action = "sent"
)]
struct ParcelSent {
    parcel: u64,
}

struct Ok_;

impl Handler<OrderPlaced> for Ok_ {
    async fn handle(&self, _: &Event<OrderPlaced>) -> HandlerResult {
        Ok(())
    }
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// This binary's logs at DEBUG and above (global: tracing caches callsite
/// interest globally).
fn logs() -> String {
    static LOGS: OnceLock<Captured> = OnceLock::new();
    let logs = LOGS.get_or_init(|| {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            // The test's thread (named after the test) on each line, so a
            // test can read its own lines among the other tests'.
            .with_thread_names(true)
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        captured
    });
    let bytes = logs.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[test]
fn start_up_names_each_event_s_handlers_and_the_event_types_without_one() {
    logs();
    let _bus = EventBus::builder()
        .without_store()
        .discover(false)
        .register_handler_named::<OrderPlaced, _>("first", Ok_)
        .register_handler_named::<OrderPlaced, _>("second", Ok_)
        .build()
        .unwrap();
    // This test's lines: the other tests of this binary build buses too,
    // some with no handler of this event.
    let thread = std::thread::current().name().unwrap().to_owned();
    let log: String = logs()
        .lines()
        .filter(|l| l.contains(&thread))
        .map(|l| format!("{l}\n"))
        .collect();
    let line = log
        .lines()
        .find(|l| {
            l.contains("handlers of event")
                && l.contains("acme.firsthour.1.event.order.placed")
                && l.contains("first, second")
        })
        .unwrap_or_else(|| panic!("{log}"));
    assert!(line.contains(" INFO "), "{line}");
    assert!(line.contains("handlers=2"), "{line}");
    assert!(line.contains("first, second"), "{line}");
    let line = log
        .lines()
        .find(|l| {
            l.contains("no handler in this program")
                && l.contains("acme.firsthour.1.event.parcel.sent")
        })
        .unwrap_or_else(|| panic!("{log}"));
    assert!(line.contains(" DEBUG "), "{line}");
    assert!(line.contains("ParcelSent"), "the Rust type: {line}");
    assert!(
        !log.lines().any(|l| l.contains("no handler in this program")
            && l.contains("acme.firsthour.1.event.order.placed")),
        "{log}"
    );
}

/// Polls `future` on this thread, outside any runtime, until it is ready.
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..1_000_000 {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::yield_now();
    }
    panic!("the future never finished");
}

#[test]
fn async_mode_outside_a_tokio_runtime_warns_once() {
    logs();
    let bus = EventBus::builder()
        .without_store()
        .discover(false)
        .async_handlers(true)
        .register_handler_named::<OrderPlaced, _>("inline", Ok_)
        .build()
        .unwrap();
    for total in 0..3 {
        let outcome = block_on(bus.publish(OrderPlaced { total })).unwrap();
        assert_eq!(outcome.spawned(), 0, "ran inline");
        assert_eq!(outcome.handlers().len(), 1);
    }
    let log = logs();
    let warnings: Vec<_> = log
        .lines()
        .filter(|l| l.contains("no tokio runtime here") && l.contains(" WARN "))
        .collect();
    assert_eq!(warnings.len(), 1, "{log}");
    assert!(warnings[0].contains("EVENT_BUS_ASYNC"), "{}", warnings[0]);
}

#[tokio::test]
async fn a_batch_outcome_iterates_by_reference_and_by_value() {
    let bus = EventBus::builder()
        .without_store()
        .discover(false)
        .build()
        .unwrap();
    let batch = bus
        .publish_batch(vec![OrderPlaced { total: 1 }, OrderPlaced { total: 2 }])
        .await
        .unwrap();
    assert_eq!(batch.len(), 2);
    assert!(!batch.is_empty());
    let ids: Vec<_> = batch.iter().map(|o| o.id().clone()).collect();
    let mut by_ref = 0;
    for outcome in &batch {
        assert_eq!(outcome.delivery(), &Delivery::InProcess);
        by_ref += 1;
    }
    assert_eq!(by_ref, 2);
    let owned: Vec<_> = batch.into_iter().map(|o| o.id().clone()).collect();
    assert_eq!(owned, ids);
}
