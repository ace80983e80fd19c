//! The EventBridge publisher against a real EventBridge API (moto on
//! loopback, started by the project's harness): events go through the bus's
//! public API, a rule on the bus sends them to an SQS queue, and the test
//! reads the queue.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use events_aws_tests::moto::{CallCounter, Moto};
use events_core::{wire, Delivery, DomainEvent, Event, EventBus, Mode};
use events_eventbridge::EventBridgePublisher;
use events_examples::domain::events::CompanyCreated;
use serde_json::Value;

const PUT_EVENTS: &str = "AWSEvents.PutEvents";

fn company(n: usize, name_len: usize) -> Event<CompanyCreated> {
    let mut name = format!("company {n} ");
    while name.len() < name_len {
        name.push('x');
    }
    Event::new(CompanyCreated {
        company_id: uuid::Uuid::new_v4(),
        company_name: name,
        country_id: uuid::Uuid::new_v4(),
    })
}

async fn bus_for(moto: &Moto, bus: &str, counter: &CallCounter, max_bytes: usize) -> EventBus {
    let publisher = EventBridgePublisher::builder()
        .bus(bus)
        .client(moto.counted_eventbridge(counter).await)
        .max_request_bytes(max_bytes)
        .check_bus(true)
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

/// The queue's messages, decoded: event id → (envelope, raw detail JSON).
fn by_event_id(bodies: &[String]) -> HashMap<String, Vec<(wire::EventBridgeEnvelope, Value)>> {
    let mut seen: HashMap<String, Vec<(wire::EventBridgeEnvelope, Value)>> = HashMap::new();
    for body in bodies {
        let envelope = wire::decode_envelope(body).unwrap();
        let json: Value = serde_json::from_str(body).unwrap();
        seen.entry(envelope.event.id.as_str().to_owned())
            .or_default()
            .push((envelope, json["detail"].clone()));
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_reaches_the_queue_exactly_once_in_ceil_n_over_10_calls() {
    let moto = Moto::start();
    for n in [1usize, 10, 11, 25, 1000] {
        let route = moto.bus_to_queue(&format!("count-{n}")).await;
        let counter = CallCounter::default();
        let bus = bus_for(&moto, &route.bus, &counter, 256 * 1024).await;
        assert_eq!(
            counter.count("AWSEvents.DescribeEventBus"),
            1,
            "the start-up check, once"
        );

        let events: Vec<Event<CompanyCreated>> = (0..n).map(|i| company(i, 40)).collect();
        let outcome = bus.publish_batch(events.clone()).await.unwrap();
        let mut remote_ids = HashMap::new();
        for o in &outcome.events {
            match o.delivery() {
                Delivery::Published {
                    remote_id: Some(remote),
                } => {
                    remote_ids.insert(o.id().as_str().to_owned(), remote.clone());
                }
                other => panic!("{n} events: {} was {other:?}", o.id()),
            }
        }
        assert_eq!(counter.count(PUT_EVENTS), n.div_ceil(10), "{n} events");
        assert_eq!(
            counter.all().len(),
            1 + n.div_ceil(10),
            "no call but PutEvents after start-up"
        );

        let bodies = moto.drain(&route.queue_url).await;
        let seen = by_event_id(&bodies);
        assert_eq!(bodies.len(), n, "{n} events, {} messages", bodies.len());
        let sent: BTreeSet<String> = events.iter().map(|e| e.id().as_str().to_owned()).collect();
        let received: BTreeSet<String> = seen.keys().cloned().collect();
        assert_eq!(sent, received, "{n} events: ids");
        for event in &events {
            let copies = &seen[event.id().as_str()];
            assert_eq!(
                copies.len(),
                1,
                "{} received {} times",
                event.id(),
                copies.len()
            );
            let decoded = copies[0].0.event.decode::<CompanyCreated>().unwrap();
            assert_eq!(&decoded, event, "ids, times and attributes exact");
            // Published carries EventBridge's id: the envelope's `id` in the queue.
            assert_eq!(
                copies[0].0.id.as_ref(),
                Some(&remote_ids[event.id().as_str()])
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_past_the_size_limit_is_split_by_size() {
    let moto = Moto::start();
    let route = moto.bus_to_queue("by-size").await;
    let counter = CallCounter::default();
    let bus = bus_for(&moto, &route.bus, &counter, 256 * 1024).await;

    // 10 events of ~60 KB: within the count limit of one call, but 4 fit
    // in 256 KiB, so 4 + 4 + 2.
    let events: Vec<Event<CompanyCreated>> = (0..10).map(|i| company(i, 60_000)).collect();
    let outcome = bus.publish_batch(events.clone()).await.unwrap();
    assert!(outcome
        .events
        .iter()
        .all(|o| matches!(o.delivery(), Delivery::Published { .. })));
    assert_eq!(counter.count(PUT_EVENTS), 3);

    let seen = by_event_id(&moto.drain(&route.queue_url).await);
    assert_eq!(seen.len(), 10);
    assert!(seen.values().all(|copies| copies.len() == 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_receives_the_spec_wire_format() {
    let moto = Moto::start();
    let route = moto.bus_to_queue("wire").await;
    let counter = CallCounter::default();
    let bus = bus_for(&moto, &route.bus, &counter, 256 * 1024).await;
    let event = company(1, 10);
    bus.publish(event.clone()).await.unwrap();

    let bodies = moto.drain(&route.queue_url).await;
    assert_eq!(bodies.len(), 1);
    let body: Value = serde_json::from_str(&bodies[0]).unwrap();
    assert_eq!(body["detail-type"], CompanyCreated::EVENT_NAME);
    assert_eq!(body["source"], "testclean.api");
    let detail = body["detail"].as_object().unwrap();
    let keys: BTreeSet<&str> = detail.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        BTreeSet::from(["id", "type", "occurred_on", "attributes"])
    );
    assert_eq!(detail["id"], event.id().as_str());
    assert_eq!(detail["type"], CompanyCreated::EVENT_NAME);
    // RFC 3339, microseconds, numeric offset (SPEC §4).
    assert_eq!(
        detail["occurred_on"],
        wire::format_time(event.occurred_on())
    );
    let occurred_on = detail["occurred_on"].as_str().unwrap();
    assert_eq!(
        occurred_on.len(),
        "2026-11-26T10:15:30.123456+00:00".len(),
        "{occurred_on}"
    );
    assert!(occurred_on.ends_with("+00:00"), "{occurred_on}");
    // `attributes` is a string holding JSON.
    let attributes: Value = serde_json::from_str(detail["attributes"].as_str().unwrap()).unwrap();
    assert_eq!(attributes, Value::Object(event.to_dict().unwrap()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_start_up_check_fails_clearly_on_a_missing_bus_and_publish_never_describes() {
    let moto = Moto::start();
    let counter = CallCounter::default();
    let err = EventBridgePublisher::builder()
        .bus("no-such-bus")
        .client(moto.counted_eventbridge(&counter).await)
        .check_bus(true)
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            events_eventbridge::PublisherBuildError::BusNotFound { .. }
        ),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.starts_with("event bus `no-such-bus` does not exist"),
        "{text}"
    );
    assert!(text.contains("EVENT_BUS_NAME"), "{text}");
    assert_eq!(counter.all(), ["AWSEvents.DescribeEventBus"]);

    // Without the check, publishing calls PutEvents only: a missing bus is a
    // failed call, so the events fail over.
    let counter = CallCounter::default();
    let bus = EventBus::builder()
        .mode(Mode::EventBridge)
        .in_memory_store()
        .publisher(Arc::new(
            EventBridgePublisher::builder()
                .bus("no-such-bus")
                .client(moto.counted_eventbridge(&counter).await)
                .build()
                .await
                .unwrap(),
        ))
        .build()
        .unwrap();
    for _ in 0..3 {
        let outcome = bus.publish(company(1, 10)).await.unwrap();
        assert!(
            matches!(outcome.delivery(), Delivery::FailedOver { error } if error.contains("ResourceNotFoundException")),
            "{:?}",
            outcome.delivery()
        );
    }
    assert_eq!(counter.all(), [PUT_EVENTS; 3]);
    assert_eq!(bus.store().unwrap().stats().await.unwrap().pending, 3);
}

/// 1,000 concurrent `bus.publish` calls (one event each) share PutEvents
/// calls: every event reaches the queue exactly once, with at most 100
/// calls.
///
/// Not a matter of the machine's speed: the 1,000 publish futures are
/// polled together from one task (`join_all` on a current-thread runtime),
/// so they are queued back to back with no other task between them; a call
/// leaves as soon as it is full, and once every call slot is taken the rest
/// wait in the queue for full calls. The linger is the longest accepted
/// (1 s), so only a stall of a second between ten consecutive enqueues
/// could send a call before it is full. (From 1,000 tasks spawned on a
/// multi-threaded runtime, a loaded machine paused the spawning for longer
/// than a 50 ms linger: 101 calls.) The default linger's calls per
/// event are measured in release by the publish benchmark
/// (`tests/aws/benches/publish_moto.rs`, BENCHMARKS.md).
#[tokio::test(flavor = "current_thread")]
async fn a_thousand_concurrent_publishes_share_calls_and_arrive_once_each() {
    let moto = Moto::start();
    let route = moto.bus_to_queue("concurrent").await;
    let counter = CallCounter::default();
    let publisher = EventBridgePublisher::builder()
        .bus(&route.bus)
        .client(moto.counted_eventbridge(&counter).await)
        .linger(events_eventbridge::MAX_LINGER)
        .build()
        .await
        .unwrap();
    let bus = EventBus::builder()
        .mode(Mode::EventBridge)
        .in_memory_store()
        .publisher(Arc::new(publisher))
        .build()
        .unwrap();

    let events: Vec<Event<CompanyCreated>> = (0..1000).map(|i| company(i, 40)).collect();
    let outcomes =
        futures_util::future::join_all(events.iter().map(|e| bus.publish(e.clone()))).await;
    let mut remote_ids = HashMap::new();
    for (outcome, event) in outcomes.into_iter().zip(&events) {
        let outcome = outcome.unwrap();
        assert_eq!(outcome.id(), event.id(), "each caller gets its own outcome");
        match outcome.delivery() {
            Delivery::Published {
                remote_id: Some(remote),
            } => {
                assert!(
                    remote_ids
                        .insert(event.id().as_str().to_owned(), remote.clone())
                        .is_none(),
                    "{}",
                    event.id()
                );
            }
            other => panic!("{} was {other:?}", event.id()),
        }
    }
    let calls = counter.count(PUT_EVENTS);
    assert!(calls <= 100, "{calls} PutEvents calls for 1,000 events");
    assert_eq!(counter.all().len(), calls, "no call but PutEvents");

    let bodies = moto.drain(&route.queue_url).await;
    let seen = by_event_id(&bodies);
    assert_eq!(bodies.len(), 1000, "{} messages", bodies.len());
    for event in &events {
        let copies = &seen[event.id().as_str()];
        assert_eq!(
            copies.len(),
            1,
            "{} received {} times",
            event.id(),
            copies.len()
        );
        assert_eq!(
            copies[0].0.event.decode::<CompanyCreated>().unwrap(),
            *event
        );
        assert_eq!(
            copies[0].0.id.as_ref(),
            Some(&remote_ids[event.id().as_str()]),
            "the outcome's remote id is the one the queue got"
        );
    }
}
