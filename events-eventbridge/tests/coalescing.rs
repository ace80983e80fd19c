//! Concurrent publishes sharing PutEvents calls, when callers go away: a
//! publish cancelled while its entries wait, a publish cancelled while the
//! call it sends carries other publishes' entries, and a publisher used
//! from several tokio runtimes, one of them shut down mid-call.
//!
//! The SDK client runs over a gated HTTP connector: each PutEvents request
//! is recorded and answered (every entry accepted) only when the test opens
//! the gate for it, so a test can hold a call in flight. Every wait has a
//! timeout: a hang is a failure, not a stuck test.

// Tests unwrap: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use aws_sdk_eventbridge::config::retry::RetryConfig;
use aws_sdk_eventbridge::Client;
use aws_smithy_runtime_api::client::http::{
    http_client_fn, HttpConnector, HttpConnectorFuture, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use events_core::{Delivery, DomainEvent, Event, EventBus, Mode, PublishOutcome};
use events_eventbridge::EventBridgePublisher;
use tokio::sync::{watch, Semaphore};

#[derive(DomainEvent, Debug, Clone, PartialEq)]
#[event(
    company = "testclean",
    service = "api",
    version = 1,
    resource = "company",
    action = "created"
)]
struct CompanyCreated {
    company_name: String,
}

fn event(name: &str) -> Event<CompanyCreated> {
    Event::new(CompanyCreated {
        company_name: name.to_owned(),
    })
}

/// Long enough for anything here to happen, short enough to fail a hang.
const WITHIN: Duration = Duration::from_secs(10);

/// The gated PutEvents: requests recorded (event ids per call), each
/// answered once the test adds a permit to `gate`.
#[derive(Debug, Clone)]
struct Gated {
    calls: Arc<Mutex<Vec<Vec<String>>>>,
    started: watch::Sender<usize>,
    gate: Arc<Semaphore>,
}

impl Gated {
    fn new() -> Gated {
        Gated {
            calls: Arc::default(),
            started: watch::channel(0).0,
            gate: Arc::new(Semaphore::new(0)),
        }
    }

    fn client(&self) -> Client {
        let gated = self.clone();
        Client::from_conf(
            aws_sdk_eventbridge::Config::builder()
                .with_test_defaults()
                .region(aws_sdk_eventbridge::config::Region::new("us-east-1"))
                .http_client(http_client_fn(move |_, _| {
                    SharedHttpConnector::new(gated.clone())
                }))
                .retry_config(RetryConfig::disabled())
                .build(),
        )
    }

    fn calls(&self) -> Vec<Vec<String>> {
        self.calls.lock().unwrap().clone()
    }

    /// Waits until `n` calls were sent.
    async fn started(&self, n: usize) {
        let mut started = self.started.subscribe();
        tokio::time::timeout(WITHIN, started.wait_for(|&s| s >= n))
            .await
            .unwrap_or_else(|_| panic!("call {n} never sent; calls: {:?}", self.calls()))
            .unwrap();
    }

    /// Lets one more call be answered.
    fn open(&self) {
        self.gate.add_permits(1);
    }
}

impl HttpConnector for Gated {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let body: serde_json::Value =
            serde_json::from_slice(request.body().bytes().unwrap()).unwrap();
        let ids: Vec<String> = body["Entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let detail: serde_json::Value =
                    serde_json::from_str(e["Detail"].as_str().unwrap()).unwrap();
                detail["id"].as_str().unwrap().to_owned()
            })
            .collect();
        let answer = serde_json::json!({
            "FailedEntryCount": 0,
            "Entries": ids.iter().map(|id| serde_json::json!({"EventId": format!("eb-{id}")})).collect::<Vec<_>>(),
        })
        .to_string();
        self.calls.lock().unwrap().push(ids);
        self.started.send_modify(|n| *n += 1);
        let gate = self.gate.clone();
        HttpConnectorFuture::new(async move {
            gate.acquire().await.unwrap().forget();
            Ok(HttpResponse::new(
                StatusCode::try_from(200).unwrap(),
                SdkBody::from(answer),
            ))
        })
    }
}

/// One call at a time, no linger: who sends what is decided by the test.
async fn bus_over(gated: &Gated) -> EventBus {
    let publisher = EventBridgePublisher::builder()
        .bus("orders")
        .client(gated.client())
        .concurrency(1)
        .linger(Duration::ZERO)
        .build()
        .await
        .unwrap();
    EventBus::builder()
        .mode(Mode::EventBridge)
        .in_memory_store()
        .publisher(Arc::new(publisher))
        .build()
        .unwrap()
}

/// Polls `future` once: far enough for a publish to queue its entries.
async fn poll_once<F: Future>(future: &mut Pin<Box<F>>) {
    std::future::poll_fn(|cx| {
        assert!(
            future.as_mut().poll(cx).is_pending(),
            "it cannot be done yet"
        );
        Poll::Ready(())
    })
    .await;
}

fn published(outcome: &PublishOutcome) -> bool {
    matches!(outcome.delivery(), Delivery::Published { remote_id: Some(r) } if *r == format!("eb-{}", outcome.id()))
}

fn ids(events: &[Event<CompanyCreated>]) -> Vec<String> {
    events.iter().map(|e| e.id().as_str().to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_cancelled_while_waiting_takes_its_event_out_and_the_others_go_on() {
    let gated = Gated::new();
    let bus = bus_over(&gated).await;
    let (x, y, z) = (event("x"), event("y"), event("z"));

    // X's call holds the only slot.
    let sender = tokio::spawn(bus.publish(x.clone()));
    gated.started(1).await;
    // Y queues its event, then is dropped before any call took it.
    let mut cancelled = Box::pin(bus.publish(y.clone()));
    poll_once(&mut cancelled).await;
    drop(cancelled);
    // Z queues behind it (polled here until its entry is in the queue, as
    // Y's was), then runs on its own.
    let mut waiting = Box::pin(bus.publish(z.clone()));
    poll_once(&mut waiting).await;
    let waiting = tokio::spawn(waiting);

    gated.open();
    gated.open();
    let out_x = tokio::time::timeout(WITHIN, sender)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let out_z = tokio::time::timeout(WITHIN, waiting)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(published(&out_x), "{out_x:?}");
    assert!(published(&out_z), "{out_z:?}");
    assert_eq!(
        gated.calls(),
        [ids(&[x]), ids(&[z])],
        "Y's event was never sent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_cancelled_mid_call_gives_the_other_entries_a_retryable_error_and_frees_the_slot()
{
    let gated = Gated::new();
    let bus = bus_over(&gated).await;
    let xs: Vec<Event<CompanyCreated>> = (0..11).map(|i| event(&format!("x{i}"))).collect();
    let (y, w) = (event("y"), event("w"));

    // X publishes 11: its first call (10) holds the slot.
    let sender = tokio::spawn(bus.publish_batch(xs.clone()));
    gated.started(1).await;
    // Y queues its event behind X's 11th.
    let mut other = Box::pin(bus.publish(y.clone()));
    poll_once(&mut other).await;
    // X's first call is answered; X sends its 11th with Y's event.
    gated.open();
    gated.started(2).await;
    assert_eq!(gated.calls()[1], ids(&[xs[10].clone(), y.clone()]));
    // X is cancelled while that call is in flight.
    sender.abort();
    assert!(sender.await.unwrap_err().is_cancelled());

    // Y is answered at once: a retryable error, so the bus fails it over.
    let out_y = tokio::time::timeout(WITHIN, other).await.unwrap().unwrap();
    match out_y.delivery() {
        Delivery::FailedOver { error } => assert!(error.starts_with("Cancelled: "), "{error}"),
        other => panic!("{other:?}"),
    }
    let pending = bus.store().unwrap().peek(10).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].event.id.as_str(), y.id().as_str());

    // The slot is free again: W's call goes out and is answered.
    let next = tokio::spawn(bus.publish(w.clone()));
    gated.started(3).await;
    gated.open();
    let out_w = tokio::time::timeout(WITHIN, next)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(published(&out_w), "{out_w:?}");
    assert_eq!(gated.calls()[2], ids(&[w]));
}

/// A process-wide publisher used from one runtime after another; one
/// runtime is shut down while it sends a call carrying another runtime's
/// event: that event is answered (a retryable error), never left waiting.
#[test]
fn one_publisher_serves_runtime_after_runtime_and_outlives_a_runtime_shut_down_mid_call() {
    let gated = Gated::new();
    let runtime = || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    };
    let bus = runtime().block_on(bus_over(&gated));

    // Runtimes in turn, each publishing concurrently, each gone after.
    let mut sent = 0;
    for round in 0..3 {
        let rt = runtime();
        let events: Vec<Event<CompanyCreated>> =
            (0..25).map(|i| event(&format!("r{round}-{i}"))).collect();
        rt.block_on(async {
            let tasks: Vec<_> = events
                .iter()
                .map(|e| tokio::spawn(bus.publish(e.clone())))
                .collect();
            for _ in 0..25 {
                gated.open();
            }
            for task in tasks {
                let out = tokio::time::timeout(WITHIN, task)
                    .await
                    .unwrap()
                    .unwrap()
                    .unwrap();
                assert!(published(&out), "round {round}: {out:?}");
            }
        });
        drop(rt);
        // Permits no call used must not answer the calls below.
        gated.gate.forget_permits(usize::MAX);
        let calls = gated.calls();
        let this_round: usize = calls[sent..].iter().map(Vec::len).sum();
        assert_eq!(this_round, 25, "round {round}: each event sent once");
        sent = calls.len();
    }

    // Runtime A sends X's first call of 10; B's event queues behind X's
    // 11th; A's next call carries both; A is shut down mid-call.
    let (a, b) = (runtime(), runtime());
    let xs: Vec<Event<CompanyCreated>> = (0..11).map(|i| event(&format!("x{i}"))).collect();
    let y = event("y");
    let _sender = a.spawn(bus.publish_batch(xs.clone()));
    b.block_on(gated.started(sent + 1));
    let mut other = Box::pin(bus.publish(y.clone()));
    b.block_on(poll_once(&mut other));
    gated.open();
    b.block_on(gated.started(sent + 2));
    assert_eq!(gated.calls()[sent + 1], ids(&[xs[10].clone(), y.clone()]));
    a.shutdown_timeout(Duration::from_secs(5));

    let out_y = b
        .block_on(async { tokio::time::timeout(WITHIN, other).await })
        .unwrap()
        .unwrap();
    assert!(
        matches!(out_y.delivery(), Delivery::FailedOver { error } if error.starts_with("Cancelled: ")),
        "{out_y:?}"
    );
    // And B goes on publishing.
    let z = event("z");
    gated.open();
    let out_z = b
        .block_on(async { tokio::time::timeout(WITHIN, bus.publish(z)).await })
        .unwrap()
        .unwrap();
    assert!(published(&out_z), "{out_z:?}");
}
