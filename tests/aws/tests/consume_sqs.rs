//! The SQS consumer against a real SQS and EventBridge (moto on loopback):
//! end to end from the Rust and the Python publishers to the example's
//! `#[handler]` functions; redrive of poison messages to a DLQ; redelivery
//! with deduplication (memory and SQLite); visibility extension; shutdown
//! with messages in flight.
//!
//! Visibility timeouts are 1 s and long polls 1 s so each test takes
//! seconds.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use company_notifications as _;
use events_aws_tests::consume::{counts, envelope_body, queue, send, tally};
use events_aws_tests::moto::{python, Moto};
use events_core::{DomainEvent, Event, EventBus, Handler, HandlerResult, Mode};
use events_eventbridge::{
    CancellationToken, ConsumeReport, ConsumerError, Dedup, EventBridgePublisher, MemoryDedup,
    Processed, SqliteDedup, SqsConsumer,
};
use events_examples::domain::events::CompanyCreated;
use serde_json::Value;

#[derive(DomainEvent, Debug, Clone)]
#[event(
    company = "testclean",
    service = "billing",
    version = 1,
    resource = "invoice",
    action = "failed"
)]
struct InvoiceFailed {
    invoice: u32,
}

fn company(i: usize) -> Event<CompanyCreated> {
    Event::new(CompanyCreated {
        company_id: uuid::Uuid::new_v4(),
        company_name: format!("company {i}"),
        country_id: uuid::Uuid::new_v4(),
    })
}

/// Records each call by event id; fails the first `fail_first` calls of
/// each id.
#[derive(Clone, Default)]
struct Recorder {
    calls: Arc<Mutex<Vec<String>>>,
    fail_first: usize,
    sleep: Duration,
    started: Arc<AtomicUsize>,
    finished: Arc<AtomicUsize>,
}

impl Recorder {
    fn failing_first(n: usize) -> Self {
        Recorder {
            fail_first: n,
            ..Recorder::default()
        }
    }

    fn slow(sleep: Duration) -> Self {
        Recorder {
            sleep,
            ..Recorder::default()
        }
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

impl<E: DomainEvent> Handler<E> for Recorder {
    async fn handle(&self, event: &Event<E>) -> HandlerResult {
        self.started.fetch_add(1, Ordering::SeqCst);
        if !self.sleep.is_zero() {
            tokio::time::sleep(self.sleep).await;
        }
        let id = event.id().as_str().to_owned();
        let seen = {
            let mut calls = self.calls.lock().unwrap();
            calls.push(id.clone());
            calls.iter().filter(|c| **c == id).count()
        };
        self.finished.fetch_add(1, Ordering::SeqCst);
        if seen <= self.fail_first {
            return Err(format!("failure {seen} of {id}").into());
        }
        Ok(())
    }
}

/// Runs `consumer` in a task until `done` says so (checked every 100 ms,
/// at most `limit`), then shuts it down; its report.
async fn run_until<F: std::future::Future<Output = bool>>(
    consumer: &SqsConsumer,
    limit: Duration,
    mut done: impl FnMut() -> F,
) -> ConsumeReport {
    let token = CancellationToken::new();
    let task = {
        let consumer = consumer.clone();
        let token = token.clone();
        tokio::spawn(async move { consumer.run(token).await.unwrap() })
    };
    let deadline = Instant::now() + limit;
    while !done().await {
        assert!(
            Instant::now() < deadline,
            "not done within {limit:?}: {:?}",
            consumer.report()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    token.cancel();
    task.await.unwrap()
}

async fn consumer(moto: &Moto, queue_url: &str) -> events_eventbridge::SqsConsumerBuilder {
    SqsConsumer::builder()
        .client(moto.sqs().await)
        .queue_url(queue_url)
        .wait_time(Duration::from_secs(1))
        .visibility_timeout(Duration::from_secs(1))
}

/// A queue URL that does not exist: `build` refuses it at start-up
/// (GetQueueAttributes), naming the URL; with the check off, `run` stops at
/// its first receive saying why, instead of polling for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_that_does_not_exist_fails_the_build_and_stops_run() {
    let moto = Moto::start();
    // An existing queue passes the check (every other test here checks too).
    let q = queue(&moto, "exists", 1, None).await;
    let missing = q.queue_url.replace("exists", "no-such-queue");
    let bus = || {
        EventBus::builder()
            .without_store()
            .discover(false)
            .build()
            .unwrap()
    };

    let err = consumer(&moto, &missing)
        .await
        .build(bus())
        .await
        .unwrap_err();
    let text = format!("{err:?}");
    assert!(matches!(err, ConsumerError::QueueNotFound { .. }), "{text}");
    assert!(
        text.starts_with(&format!(
            "SQS queue `{missing}` does not exist in this account and region (GetQueueAttributes: "
        )),
        "{text}"
    );
    assert!(
        text.ends_with("create it, or set EVENT_BUS_QUEUE_URL to the URL of an existing queue"),
        "{text}"
    );

    let consumer = consumer(&moto, &missing)
        .await
        .check_queue(false)
        .build(bus())
        .await
        .unwrap();
    let stopped = tokio::time::timeout(
        Duration::from_secs(30),
        consumer.run(CancellationToken::new()),
    )
    .await
    .expect("run stops by itself")
    .unwrap_err();
    let text = format!("{stopped:?}");
    assert!(matches!(stopped, ConsumerError::Stopped { .. }), "{text}");
    assert!(
        text.starts_with(&format!(
            "stopped consuming SQS queue `{missing}`: ReceiveMessage failed with "
        )),
        "{text}"
    );
    assert!(text.contains("the queue does not exist"), "{text}");
    assert_eq!(consumer.report().receive_errors, 1, "stopped at once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_and_python_publishers_to_the_examples_handlers_through_eventbridge_and_sqs() {
    let moto = Moto::start();
    let route = moto.bus_to_queue("e2e").await;

    // The Rust publisher: the bus in eventbridge mode.
    let publisher = EventBridgePublisher::builder()
        .bus(&route.bus)
        .client(moto.eventbridge().await)
        .build()
        .await
        .unwrap();
    let publishing = EventBus::builder()
        .mode(Mode::EventBridge)
        .in_memory_store()
        .discover(false)
        .publisher(Arc::new(publisher))
        .build()
        .unwrap();
    let events: Vec<_> = (0..20).map(company).collect();
    let mut expected: BTreeSet<String> =
        events.iter().map(|e| e.id().as_str().to_owned()).collect();
    publishing.publish_batch(events).await.unwrap();

    // The Python package's publisher, to the same bus.
    let out = std::process::Command::new(python())
        .arg(events_aws_tests::moto::workspace_root().join("tests/interop/moto_interop.py"))
        .args(["publish", &route.bus, "testclean.api", "5"])
        .envs(moto.env())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let produced: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(produced.len(), 5);
    let from_python: BTreeSet<String> = produced
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect();
    expected.extend(from_python.iter().cloned());

    // The consumer: the example's handlers, discovered.
    let bus = EventBus::builder().without_store().build().unwrap();
    let handlers = bus.handlers_of(CompanyCreated::EVENT_NAME);
    assert_eq!(
        handlers,
        [
            "company_notifications::send_welcome_email",
            "events_examples::infrastructure::messaging::handlers::CreateDefaultSettings",
            "events_examples::infrastructure::messaging::handlers::log_company_created",
        ]
    );
    let handled: Arc<Mutex<Vec<(String, usize)>>> = Arc::default();
    let seen = Arc::clone(&handled);
    let consumer = consumer(&moto, &route.queue_url)
        .await
        .on_processed(move |p| {
            if let Processed::Handled { id, ran, .. } = p {
                seen.lock().unwrap().push((id.clone(), *ran));
            }
        })
        .build(bus)
        .await
        .unwrap();
    let report = run_until(&consumer, Duration::from_secs(60), || {
        let done = handled.lock().unwrap().len() >= expected.len();
        async move { done }
    })
    .await;

    let handled = handled.lock().unwrap().clone();
    let ids: BTreeSet<String> = handled.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(ids, expected, "every id handled");
    assert_eq!(handled.len(), 25, "each once: {handled:?}");
    assert!(
        handled.iter().all(|(_, ran)| *ran == 3),
        "all three handlers ran: {handled:?}"
    );
    assert_eq!(report.received, 25);
    assert_eq!(report.handled, 25);
    assert_eq!(report.deleted, 25);
    assert_eq!(report.failed + report.undecodable + report.unrouted, 0);
    assert_eq!(
        counts(&moto, &route.queue_url).await,
        (0, 0),
        "the queue is empty"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_and_always_failing_messages_go_to_the_dlq_and_the_healthy_ones_are_handled_once() {
    let moto = Moto::start();
    let q = queue(&moto, "redrive", 1, Some(2)).await;
    let healthy = Recorder::default();
    let failing = Recorder::failing_first(usize::MAX);
    let bus = EventBus::builder()
        .without_store()
        .discover(false)
        .register_handler_named::<CompanyCreated, _>("healthy", healthy.clone())
        .register_handler_named::<InvoiceFailed, _>("always_fails", failing.clone())
        .build()
        .unwrap();

    // Two batches of 10: 9 healthy + the poison, 9 healthy + the failing.
    let companies: Vec<_> = (0..18).map(company).collect();
    let poison = "this is not JSON {".to_owned();
    let invoice = Event::new(InvoiceFailed { invoice: 7 });
    let failing_body = envelope_body(&invoice);
    let mut first: Vec<String> = companies[..9].iter().map(envelope_body).collect();
    first.push(poison.clone());
    let mut second: Vec<String> = companies[9..].iter().map(envelope_body).collect();
    second.push(failing_body.clone());
    send(&moto, &q.queue_url, &first).await;
    send(&moto, &q.queue_url, &second).await;

    let consumer = consumer(&moto, &q.queue_url)
        .await
        .build(bus)
        .await
        .unwrap();
    let report = run_until(&consumer, Duration::from_secs(60), || async {
        // The DLQ is looked at, not consumed.
        healthy.calls().len() >= 18 && counts(&moto, &q.dlq_url).await.0 >= 2
    })
    .await;

    let calls = tally(healthy.calls());
    assert_eq!(calls.len(), 18, "every healthy event handled");
    assert!(calls.values().all(|n| *n == 1), "each once: {calls:?}");
    assert_eq!(
        failing.calls().len(),
        2,
        "the failing handler ran once per receive, maxReceiveCount times"
    );
    let dlq = moto.drain(&q.dlq_url).await;
    let dlq: HashSet<String> = dlq.into_iter().collect();
    assert_eq!(
        dlq,
        HashSet::from([poison, failing_body]),
        "both in the DLQ"
    );
    assert_eq!(report.handled, 18);
    assert_eq!(report.deleted, 18);
    assert_eq!(report.undecodable, 2, "the poison, received twice");
    assert_eq!(report.failed, 2, "the failing event, received twice");
    assert_eq!(
        counts(&moto, &q.queue_url).await,
        (0, 0),
        "the queue is empty"
    );
}

/// Two handlers of each event, one failing its first call: after the
/// redelivery, the one that succeeded ran once (it is marked), the other
/// twice.
async fn redelivery(
    dedup: Option<Arc<dyn Dedup>>,
) -> (
    HashMap<String, usize>,
    HashMap<String, usize>,
    ConsumeReport,
) {
    let moto = Moto::start();
    let q = queue(&moto, "redelivery", 1, None).await;
    let steady = Recorder::default();
    let flaky = Recorder::failing_first(1);
    let bus = EventBus::builder()
        .without_store()
        .discover(false)
        .register_handler_named::<CompanyCreated, _>("steady", steady.clone())
        .register_handler_named::<CompanyCreated, _>("flaky", flaky.clone())
        .build()
        .unwrap();
    let events: Vec<_> = (0..5).map(company).collect();
    send(
        &moto,
        &q.queue_url,
        &events.iter().map(envelope_body).collect::<Vec<_>>(),
    )
    .await;
    // A visibility of 4 s (renewed every 2 s), not the 1 s of the other
    // tests: with 1 s, a loaded machine renewing late let a message come back
    // while its second attempt still ran, and the flaky handler ran a third
    // time beside it (at-least-once, as documented), which this test's exact
    // counts are not about.
    let mut builder = consumer(&moto, &q.queue_url)
        .await
        .visibility_timeout(Duration::from_secs(4));
    if let Some(dedup) = dedup {
        builder = builder.dedup(dedup);
    }
    let consumer = builder.build(bus).await.unwrap();
    let report = run_until(&consumer, Duration::from_secs(60), || {
        let n = consumer.report().deleted;
        async move { n >= 5 }
    })
    .await;
    (tally(steady.calls()), tally(flaky.calls()), report)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivery_with_memory_dedup_runs_only_the_failed_handler_again() {
    let (steady, flaky, report) = redelivery(Some(Arc::new(MemoryDedup::default()))).await;
    assert_eq!(steady.len(), 5);
    assert!(
        steady.values().all(|n| *n == 1),
        "succeeded once, skipped after: {steady:?}"
    );
    assert!(
        flaky.values().all(|n| *n == 2),
        "failed, then succeeded: {flaky:?}"
    );
    assert_eq!((report.failed, report.handled, report.deleted), (5, 5, 5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivery_with_sqlite_dedup_runs_only_the_failed_handler_again() {
    let dir = tempfile::tempdir().unwrap();
    let dedup = SqliteDedup::open(dir.path().join("dedup.db")).unwrap();
    let (steady, flaky, report) = redelivery(Some(Arc::new(dedup.clone()))).await;
    assert_eq!(steady.len(), 5);
    assert!(
        steady.values().all(|n| *n == 1),
        "succeeded once, skipped after: {steady:?}"
    );
    assert!(
        flaky.values().all(|n| *n == 2),
        "failed, then succeeded: {flaky:?}"
    );
    assert_eq!((report.failed, report.handled, report.deleted), (5, 5, 5));
    assert_eq!(
        dedup.marked().unwrap(),
        10,
        "both handlers of 5 events marked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivery_without_dedup_runs_both_handlers_again() {
    let (steady, flaky, _) = redelivery(None).await;
    assert!(steady.values().all(|n| *n == 2), "{steady:?}");
    assert!(flaky.values().all(|n| *n == 2), "{flaky:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_longer_than_the_visibility_timeout_keeps_its_message() {
    let moto = Moto::start();
    let q = queue(&moto, "slow", 1, None).await;
    let slow = Recorder::slow(Duration::from_millis(3500));
    let bus = EventBus::builder()
        .without_store()
        .discover(false)
        .register_handler_named::<CompanyCreated, _>("slow", slow.clone())
        .build()
        .unwrap();
    send(&moto, &q.queue_url, &[envelope_body(&company(0))]).await;
    let consumer = consumer(&moto, &q.queue_url)
        .await
        .build(bus)
        .await
        .unwrap();
    let mut deleted_at = None;
    let report = run_until(&consumer, Duration::from_secs(30), || {
        let done = if consumer.report().deleted >= 1 {
            // Keep polling 2 more visibility timeouts: nothing comes back.
            let at = *deleted_at.get_or_insert_with(Instant::now);
            at.elapsed() > Duration::from_secs(2)
        } else {
            false
        };
        async move { done }
    })
    .await;
    assert_eq!(
        slow.started.load(Ordering::SeqCst),
        1,
        "not delivered again while it ran"
    );
    assert_eq!((report.received, report.handled, report.deleted), (1, 1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_20_messages_in_flight_and_deletes_them() {
    let moto = Moto::start();
    let q = queue(&moto, "shutdown", 30, None).await;
    let slow = Recorder::slow(Duration::from_secs(2));
    let bus = EventBus::builder()
        .without_store()
        .discover(false)
        .register_handler_named::<CompanyCreated, _>("slow", slow.clone())
        .build()
        .unwrap();
    let events: Vec<_> = (0..20).map(company).collect();
    send(
        &moto,
        &q.queue_url,
        &events.iter().map(envelope_body).collect::<Vec<_>>(),
    )
    .await;
    let consumer = SqsConsumer::builder()
        .client(moto.sqs().await)
        .queue_url(&q.queue_url)
        .wait_time(Duration::from_secs(1))
        .visibility_timeout(Duration::from_secs(30))
        .concurrency(20)
        .shutdown_timeout(Duration::from_secs(10))
        .build(bus)
        .await
        .unwrap();
    let token = CancellationToken::new();
    let task = {
        let consumer = consumer.clone();
        let token = token.clone();
        tokio::spawn(async move { consumer.run(token).await.unwrap() })
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while slow.started.load(Ordering::SeqCst) < 20 {
        assert!(
            Instant::now() < deadline,
            "20 in flight: {:?}",
            consumer.report()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        slow.finished.load(Ordering::SeqCst),
        0,
        "all 20 still running"
    );
    let stop = Instant::now();
    token.cancel();
    let report = task.await.unwrap();
    let took = stop.elapsed();
    assert!(
        took < Duration::from_secs(10),
        "returned within the shutdown timeout: {took:?}"
    );
    assert_eq!(slow.finished.load(Ordering::SeqCst), 20, "all finished");
    assert_eq!(
        (
            report.received,
            report.handled,
            report.deleted,
            report.abandoned
        ),
        (20, 20, 20, 0)
    );
    assert_eq!(counts(&moto, &q.queue_url).await, (0, 0), "all deleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_past_its_timeout_abandons_the_messages_to_redelivery() {
    let moto = Moto::start();
    let q = queue(&moto, "abandon", 2, None).await;
    let stuck = Recorder::slow(Duration::from_secs(600));
    let bus = EventBus::builder()
        .without_store()
        .discover(false)
        .register_handler_named::<CompanyCreated, _>("stuck", stuck.clone())
        .build()
        .unwrap();
    send(
        &moto,
        &q.queue_url,
        &[envelope_body(&company(0)), envelope_body(&company(1))],
    )
    .await;
    let consumer = SqsConsumer::builder()
        .client(moto.sqs().await)
        .queue_url(&q.queue_url)
        .wait_time(Duration::from_secs(1))
        .visibility_timeout(Duration::from_secs(2))
        .shutdown_timeout(Duration::from_millis(500))
        .build(bus)
        .await
        .unwrap();
    let stop = Instant::now();
    let report = run_until(&consumer, Duration::from_secs(20), || {
        let n = stuck.started.load(Ordering::SeqCst);
        async move { n >= 2 }
    })
    .await;
    assert!(stop.elapsed() < Duration::from_secs(20));
    assert_eq!((report.abandoned, report.deleted), (2, 0));
    // Not deleted: both come back once their visibility timeout passes.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(moto.drain(&q.queue_url).await.len(), 2);
}
