//! Upcasting on every consumer path, against a real EventBridge and SQS
//! (moto on loopback): v1 `CompanyCreated` events published by a Rust
//! program, by the Python package (under the v1 name) and replayed from a
//! store reach a handler of `CompanyCreatedV3` in another program through
//! `SqsConsumer`, upcast v1 -> v2 -> v3 by the example's `From` impls, with
//! their ids and times exact; the same bodies through the Lambda (SQS and
//! direct EventBridge) and HTTP adapters.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use events_aws_tests::consume::raw_envelope_body;
use events_aws_tests::moto::{python, workspace_root, Moto};
use events_core::{
    DomainEvent, Event, EventBus, Handler, HandlerResult, MemoryStore, Mode, RawEvent,
};
use events_eventbridge::http::DispatchRouter;
use events_eventbridge::lambda::{
    handle_eventbridge_event, handle_sqs_event, EventBridgeEvent, SqsEvent,
};
use events_eventbridge::{
    CancellationToken, EventBridgePublisher, Processed, Processor, SqsConsumer,
};
use events_examples::domain::events::{CompanyCreated, CompanyCreatedV2, CompanyCreatedV3};
use serde_json::{json, Value};

/// What the v3 handler saw of one event.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    micros: i64,
    published_as: &'static str,
    payload: CompanyCreatedV3,
}

#[derive(Clone, Default)]
struct V3Handler(Arc<Mutex<BTreeMap<String, Seen>>>);

impl Handler<CompanyCreatedV3> for V3Handler {
    async fn handle(&self, event: &Event<CompanyCreatedV3>) -> HandlerResult {
        let seen = Seen {
            micros: event.occurred_on().timestamp_micros(),
            published_as: event.published_as(),
            payload: event.payload().clone(),
        };
        self.0.lock().unwrap().insert(event.id().to_string(), seen);
        Ok(())
    }
}

impl V3Handler {
    fn seen(&self) -> BTreeMap<String, Seen> {
        self.0.lock().unwrap().clone()
    }
}

/// The consuming program: only a handler of v3.
fn v3_program() -> (EventBus, V3Handler) {
    let handler = V3Handler::default();
    let bus = EventBus::builder()
        .without_store()
        .discover(false)
        .register_handler_named("v3", handler.clone())
        .build()
        .unwrap();
    (bus, handler)
}

/// What the v3 handler must see for a v1 event.
fn expected(v1: &CompanyCreated, micros: i64) -> Seen {
    Seen {
        micros,
        published_as: CompanyCreated::EVENT_NAME,
        payload: CompanyCreatedV3::from(CompanyCreatedV2::from(v1.clone())),
    }
}

fn v1(name: &str) -> Event<CompanyCreated> {
    Event::new(CompanyCreated {
        company_id: uuid::Uuid::new_v4(),
        company_name: name.to_owned(),
        country_id: uuid::Uuid::new_v4(),
    })
}

fn eventbridge_publisher_bus(publisher: EventBridgePublisher, store: Arc<MemoryStore>) -> EventBus {
    EventBus::builder()
        .mode(Mode::EventBridge)
        .store(store)
        .discover(false)
        .publisher(Arc::new(publisher))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_events_from_rust_python_and_a_store_replay_reach_a_v3_handler_through_sqs() {
    let moto = Moto::start();
    let route = moto.bus_to_queue("upcast").await;
    let publisher = || async {
        EventBridgePublisher::builder()
            .bus(&route.bus)
            .client(moto.eventbridge().await)
            .build()
            .await
            .unwrap()
    };
    let mut expect: BTreeMap<String, Seen> = BTreeMap::new();

    // A Rust program still on v1.
    let publishing = eventbridge_publisher_bus(publisher().await, Arc::new(MemoryStore::new()));
    let events: Vec<_> = (0..3).map(|i| v1(&format!("Rust company {i}"))).collect();
    for e in &events {
        expect.insert(
            e.id().to_string(),
            expected(e.payload(), e.occurred_on().timestamp_micros()),
        );
    }
    publishing.publish_batch(events).await.unwrap();

    // The Python package, publishing under the v1 name.
    let out = std::process::Command::new(python())
        .arg(workspace_root().join("tests/interop/moto_interop.py"))
        .args(["publish", &route.bus, "testclean.api", "2"])
        .envs(moto.env())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let produced: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(produced.len(), 2);
    for p in &produced {
        let attributes = p["attributes"].as_object().unwrap();
        let event = CompanyCreated::from_dict(attributes).unwrap();
        expect.insert(
            p["id"].as_str().unwrap().to_owned(),
            expected(&event, p["occurred_on_micros"].as_i64().unwrap()),
        );
    }

    // Events waiting in a store (failed over while EventBridge was away),
    // replayed: fixed ids and times, as they were stored.
    let store = Arc::new(MemoryStore::new());
    let stored: Vec<RawEvent> = (0..2)
        .map(|i| {
            let event = Event::with_identity(
                format!("stored-{i}"),
                events_core::chrono::DateTime::from_timestamp_micros(1_700_000_000_123_456 + i)
                    .unwrap(),
                v1(&format!("Stored company {i}")).into_payload(),
            );
            expect.insert(
                event.id().to_string(),
                expected(event.payload(), event.occurred_on().timestamp_micros()),
            );
            RawEvent::from_event(&event).unwrap()
        })
        .collect();
    events_core::EventStore::store(store.as_ref(), stored)
        .await
        .unwrap();
    let replaying = eventbridge_publisher_bus(publisher().await, Arc::clone(&store));
    let report = replaying.publish_from_failover(10).await.unwrap();
    assert_eq!(report.sent.len(), 2, "{report:?}");

    // Another program, whose only handler takes v3.
    let (bus, handler) = v3_program();
    assert_eq!(bus.handlers_of(CompanyCreated::EVENT_NAME), ["v3"]);
    let consumer = SqsConsumer::builder()
        .client(moto.sqs().await)
        .queue_url(&route.queue_url)
        .wait_time(Duration::from_secs(1))
        .visibility_timeout(Duration::from_secs(5))
        .build(bus)
        .await
        .unwrap();
    let token = CancellationToken::new();
    let task = {
        let (consumer, token) = (consumer.clone(), token.clone());
        tokio::spawn(async move { consumer.run(token).await.unwrap() })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while handler.seen().len() < expect.len() {
        assert!(
            Instant::now() < deadline,
            "not all handled: {:?}",
            consumer.report()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    token.cancel();
    let report = task.await.unwrap();
    assert_eq!(handler.seen(), expect);
    assert_eq!(report.handled, 7, "{report:?}");
    assert_eq!(
        report.failed + report.undecodable + report.unrouted,
        0,
        "{report:?}"
    );
}

/// The SQS body of a v1 event, as an EventBridge rule delivers it.
fn body_of(event: &Event<CompanyCreated>) -> String {
    raw_envelope_body(&RawEvent::from_event(event).unwrap())
}

#[tokio::test]
async fn v1_events_reach_a_v3_handler_through_the_lambda_adapters() {
    let (bus, handler) = v3_program();
    let processor = Processor::new(bus);
    let (a, b) = (v1("Lambda SQS"), v1("Lambda EventBridge"));

    let sqs: SqsEvent = serde_json::from_value(json!({"Records": [{
        "messageId": "m-1", "receiptHandle": "r-1", "body": body_of(&a),
        "attributes": {}, "messageAttributes": {}, "md5OfBody": "",
        "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q",
        "awsRegion": "us-east-1",
    }]}))
    .unwrap();
    let response = handle_sqs_event(&processor, sqs).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");

    let direct: EventBridgeEvent = serde_json::from_str(&body_of(&b)).unwrap();
    let done = handle_eventbridge_event(&processor, &direct).await.unwrap();
    assert!(
        matches!(&done, Processed::Handled { ran: 1, .. }),
        "{done:?}"
    );

    let seen = handler.seen();
    for e in [&a, &b] {
        assert_eq!(
            seen[e.id().as_str()],
            expected(e.payload(), e.occurred_on().timestamp_micros())
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v1_event_reaches_a_v3_handler_through_the_http_adapter() {
    let (bus, handler) = v3_program();
    let router = DispatchRouter::new(Processor::new(bus))
        .api_key("X-Events-Key", "k3y")
        .build()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        events_eventbridge::axum::serve(listener, router)
            .await
            .unwrap()
    });

    let event = v1("HTTP");
    let body = body_of(&event);
    let request = format!(
        "POST {} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nX-Events-Key: k3y\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        events_eventbridge::http::DISPATCH_PATH,
        body.len()
    );
    let response = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    })
    .await
    .unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert_eq!(
        handler.seen()[event.id().as_str()],
        expected(event.payload(), event.occurred_on().timestamp_micros())
    );
}
