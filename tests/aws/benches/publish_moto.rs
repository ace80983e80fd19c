//! Publishing throughput against moto: the same 1,000 `CompanyCreated`
//! events published, each side to a fresh bus of its own, by
//!
//! - ours, one `bus.publish_batch` of the 1,000;
//! - ours, 1,000 concurrent `bus.publish` calls (1,000 tasks, one event
//!   each);
//! - (a) a hand-written loop with the SDK: the events' details encoded with
//!   `serde_json`, PutEvents calls of 10 entries, 8 in flight (our default
//!   concurrency): the server's limit;
//! - (b) Python's `package-events-bus` publisher
//!   (`scripts/bench-publish-python.py`): `publish(event)` per event (its
//!   API for an event: DescribeEventBus + PutEvents each), and
//!   `publish_batch` of 10 events at a time (it does not chunk, so its
//!   users must).
//!
//! Each side is timed from its first call to its last answer (building the
//! bus, the client and the Python process are not timed); every event must
//! be accepted (ours: `Published`; raw: no failed entry; Python: nothing in
//! its failover). The buses have no rule: with a rule sending events to an
//! SQS queue, moto spends 10-20 ms per *event* delivering it (measured:
//! PutEvents of 10 entries 110-190 ms with the rule, 5-7 ms without), which
//! would measure moto's SQS, not the publishers (the tests prove delivery
//! to a queue). Rounds rotate the order of the sides. Calls are counted per side (an interceptor on the Rust clients,
//! boto3's event hooks in Python). Prints one line per round, then medians.
//!
//! `scripts/bench-publish`, or `cargo bench -p events-aws-tests --bench
//! publish_moto` (`PUBLISH_BENCH_N`, `PUBLISH_BENCH_ROUNDS`,
//! `PUBLISH_BENCH_LINGER_US` to try another linger).

#![allow(missing_docs)]

use std::collections::HashMap;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use events_aws_tests::moto::{python, workspace_root, CallCounter, Moto};
use events_core::{wire, Delivery, DomainEvent, Event, EventBus, Mode};
use events_eventbridge::EventBridgePublisher;
use events_examples::domain::events::CompanyCreated;
use futures_util::stream::{self, StreamExt};

const CONCURRENCY: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Side {
    OursBatch,
    OursConcurrent,
    RawSdk,
    PythonPublish,
    PythonBatch10,
}

const SIDES: [Side; 5] = [
    Side::OursBatch,
    Side::OursConcurrent,
    Side::RawSdk,
    Side::PythonPublish,
    Side::PythonBatch10,
];

impl Side {
    fn label(self) -> &'static str {
        match self {
            Side::OursBatch => "ours, publish_batch",
            Side::OursConcurrent => "ours, concurrent publish",
            Side::RawSdk => "(a) raw SDK, 10/call, 8 at once",
            Side::PythonPublish => "(b) Python publish() per event",
            Side::PythonBatch10 => "(b) Python publish_batch of 10",
        }
    }
}

/// One side's run: how long, how many calls.
struct Run {
    took: Duration,
    calls: usize,
}

fn events(n: usize) -> Vec<Event<CompanyCreated>> {
    (0..n)
        .map(|i| {
            Event::new(CompanyCreated {
                company_id: uuid::Uuid::new_v4(),
                company_name: format!("company {i}"),
                country_id: uuid::Uuid::new_v4(),
            })
        })
        .collect()
}

fn linger() -> Option<Duration> {
    std::env::var("PUBLISH_BENCH_LINGER_US")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_micros)
}

async fn bus(moto: &Moto, bus_name: &str, counter: &CallCounter) -> EventBus {
    let mut publisher = EventBridgePublisher::builder()
        .bus(bus_name)
        .client(moto.counted_eventbridge(counter).await)
        .concurrency(CONCURRENCY);
    if let Some(linger) = linger() {
        publisher = publisher.linger(linger);
    }
    EventBus::builder()
        .mode(Mode::EventBridge)
        .discover(false)
        .in_memory_store()
        .publisher(Arc::new(publisher.build().await.unwrap()))
        .build()
        .unwrap()
}

async fn ours_batch(moto: &Moto, bus_name: &str, events: &[Event<CompanyCreated>]) -> Run {
    let counter = CallCounter::default();
    let bus = bus(moto, bus_name, &counter).await;
    let events = events.to_vec();
    let start = Instant::now();
    let outcome = bus.publish_batch(events).await.unwrap();
    let took = start.elapsed();
    assert!(outcome
        .events
        .iter()
        .all(|o| matches!(o.delivery(), Delivery::Published { .. })));
    Run {
        took,
        calls: counter.all().len(),
    }
}

async fn ours_concurrent(moto: &Moto, bus_name: &str, events: &[Event<CompanyCreated>]) -> Run {
    let counter = CallCounter::default();
    let bus = bus(moto, bus_name, &counter).await;
    let events = events.to_vec();
    let start = Instant::now();
    let tasks: Vec<_> = events
        .into_iter()
        .map(|e| tokio::spawn(bus.publish(e)))
        .collect();
    for task in tasks {
        let outcome = task.await.unwrap().unwrap();
        assert!(matches!(outcome.delivery(), Delivery::Published { .. }));
    }
    let took = start.elapsed();
    Run {
        took,
        calls: counter.all().len(),
    }
}

/// The detail a hand-written publisher would send (SPEC §4).
fn detail(event: &Event<CompanyCreated>) -> String {
    serde_json::json!({
        "id": event.id().as_str(),
        "type": CompanyCreated::EVENT_NAME,
        "occurred_on": wire::format_time(event.occurred_on()),
        "attributes": serde_json::to_string(&event.to_dict().unwrap()).unwrap(),
    })
    .to_string()
}

async fn raw_sdk(moto: &Moto, bus_name: &str, events: &[Event<CompanyCreated>]) -> Run {
    let counter = CallCounter::default();
    let client = moto.counted_eventbridge(&counter).await;
    let start = Instant::now();
    let entries: Vec<PutEventsRequestEntry> = events
        .iter()
        .map(|e| {
            PutEventsRequestEntry::builder()
                .event_bus_name(bus_name)
                .source("testclean.api")
                .detail_type(CompanyCreated::EVENT_NAME)
                .detail(detail(e))
                .build()
        })
        .collect();
    let calls = entries.chunks(10).map(|chunk| {
        let client = client.clone();
        let chunk = chunk.to_vec();
        async move {
            let out = client
                .put_events()
                .set_entries(Some(chunk))
                .send()
                .await
                .unwrap();
            assert_eq!(out.failed_entry_count(), 0);
        }
    });
    stream::iter(calls)
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<()>>()
        .await;
    let took = start.elapsed();
    Run {
        took,
        calls: counter.all().len(),
    }
}

fn python_side(moto: &Moto, bus_name: &str, mode: &str, events_file: &std::path::Path) -> Run {
    let out = Command::new(python())
        .arg(workspace_root().join("scripts/bench-publish-python.py"))
        .args([mode, bus_name])
        .arg(events_file)
        .envs(moto.env())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let calls = value["calls"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap() as usize)
        .sum();
    Run {
        took: Duration::from_secs_f64(value["seconds"].as_f64().unwrap()),
        calls,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let n: usize = std::env::var("PUBLISH_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let rounds: usize = std::env::var("PUBLISH_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let moto = Moto::start();
        let events = events(n);
        let dir = tempfile::tempdir().unwrap();
        let events_file = dir.path().join("events.json");
        let json: Vec<serde_json::Value> = events
            .iter()
            .map(|e| {
                serde_json::json!({
                    "id": e.id().as_str(),
                    "occurred_on": wire::format_time(e.occurred_on()),
                    "company_id": e.company_id.to_string(),
                    "company_name": e.company_name,
                    "country_id": e.country_id.to_string(),
                })
            })
            .collect();
        std::fs::write(&events_file, serde_json::to_vec(&json).unwrap()).unwrap();

        let mut rates: HashMap<Side, Vec<f64>> = HashMap::new();
        let mut calls: HashMap<Side, Vec<f64>> = HashMap::new();
        for round in 0..rounds {
            let mut line = format!("round {round}:");
            for k in 0..SIDES.len() {
                let side = SIDES[(k + round) % SIDES.len()];
                let bus_name = format!("bench-{round}-{k}");
                moto.eventbridge()
                    .await
                    .create_event_bus()
                    .name(&bus_name)
                    .send()
                    .await
                    .unwrap();
                let run = match side {
                    Side::OursBatch => ours_batch(&moto, &bus_name, &events).await,
                    Side::OursConcurrent => ours_concurrent(&moto, &bus_name, &events).await,
                    Side::RawSdk => raw_sdk(&moto, &bus_name, &events).await,
                    Side::PythonPublish => python_side(&moto, &bus_name, "publish", &events_file),
                    Side::PythonBatch10 => python_side(&moto, &bus_name, "batch10", &events_file),
                };
                let rate = n as f64 / run.took.as_secs_f64();
                line.push_str(&format!(
                    " | {} {rate:.0} ev/s {:.3} calls/ev",
                    side.label(),
                    run.calls as f64 / n as f64
                ));
                rates.entry(side).or_default().push(rate);
                calls.entry(side).or_default().push(run.calls as f64 / n as f64);
            }
            println!("{line}");
        }
        let m = |side: Side| median(rates[&side].clone());
        println!("\nmedians of {rounds} rounds, {n} events:");
        for side in SIDES {
            println!(
                "  {:34} {:8.0} events/s  {:.3} calls/event",
                side.label(),
                m(side),
                median(calls[&side].clone())
            );
        }
        let raw = m(Side::RawSdk);
        for ours in [Side::OursBatch, Side::OursConcurrent] {
            println!(
                "  {}: {:.0} % of (a) (goal >= 90 %), {:.1}x (b) publish(), {:.1}x (b) publish_batch of 10 (goal >= 20x)",
                ours.label(),
                100.0 * m(ours) / raw,
                m(ours) / m(Side::PythonPublish),
                m(ours) / m(Side::PythonBatch10),
            );
        }
    });
}
