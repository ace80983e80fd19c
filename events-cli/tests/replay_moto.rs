//! `events replay` in eventbridge mode, against moto (started by the
//! project's harness): 500 publishes through the company example's use case
//! in eventbridge mode, moto killed after 250 and restarted after the rest,
//! then `events replay --max 1000` (configured by the same variables as the
//! program): every id in the queue exactly once, the store empty.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use events_aws_tests::moto::Moto;
use events_core::{wire, Delivery, EventBus, Mode};
use events_eventbridge::aws_sdk_eventbridge::config::retry::RetryConfig;
use events_eventbridge::EventBridgePublisher;
use events_examples::application::{CreateCompanyDto, CreateCompanyUseCase};
use events_examples::infrastructure::repository::InMemoryCompanyRepository;
use serde_json::Value;

async fn bus(moto: &Moto, name: &str, store: &Path) -> EventBus {
    // One SDK attempt: with moto down, a call fails at once (connection refused).
    let config = moto
        .sdk_config()
        .await
        .into_builder()
        .retry_config(RetryConfig::standard().with_max_attempts(1))
        .build();
    let publisher = EventBridgePublisher::builder()
        .bus(name)
        .sdk_config(&config)
        .build()
        .await
        .unwrap();
    EventBus::builder()
        .mode(Mode::EventBridge)
        .store_path(store)
        .publisher(Arc::new(publisher))
        .build()
        .unwrap()
}

fn event_ids(bodies: &[String]) -> Vec<String> {
    bodies
        .iter()
        .map(|b| {
            wire::decode_envelope(b)
                .unwrap()
                .event
                .id
                .as_str()
                .to_owned()
        })
        .collect()
}

fn events_tool(moto: &Moto, bus: &str, store: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_events"))
        .arg("--store")
        .arg(store)
        .args(args)
        .envs(moto.env())
        .env("EVENT_BUS_MODE", "eventbridge")
        .env("EVENT_BUS_NAME", bus)
        .env("AWS_MAX_ATTEMPTS", "1")
        .env_remove("EVENT_BUS_SOURCE")
        .env_remove("AWS_PROFILE")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_replay_sends_what_an_outage_left_exactly_once() {
    let mut moto = Moto::start();
    let route = moto.bus_to_queue("cli-outage").await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("events.db");

    let mut published = Vec::new();
    let mut before = Vec::new();
    {
        let bus = bus(&moto, &route.bus, &store).await;
        let use_case =
            CreateCompanyUseCase::new(Arc::new(InMemoryCompanyRepository::default()), bus);
        for i in 0..500 {
            if i == 250 {
                // Everything so far is in the queue: read it, then kill moto.
                before = event_ids(&moto.drain(&route.queue_url).await);
                moto.stop();
            }
            let company = use_case
                .execute(CreateCompanyDto {
                    name: format!("Company {i}"),
                    country_id: uuid::Uuid::new_v4(),
                })
                .await
                .unwrap();
            for event in company.published {
                published.push((event.id().as_str().to_owned(), event.delivery().clone()));
            }
        }
    }
    assert_eq!(published.len(), 500);
    assert_eq!(before.len(), 250);
    let failed_over: BTreeSet<String> = published
        .iter()
        .filter(|(_, d)| matches!(d, Delivery::FailedOver { .. }))
        .map(|(id, _)| id.clone())
        .collect();
    assert_eq!(failed_over.len(), 250);

    moto.restart();
    let route = moto.bus_to_queue("cli-outage").await;
    let (code, out, err) = events_tool(
        &moto,
        &route.bus,
        &store,
        &["--json", "replay", "--max", "1000"],
    );
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["sent"], 250, "{report}");
    assert_eq!(report["pending"], 0, "{report}");

    let (code, out, err) = events_tool(&moto, &route.bus, &store, &["--json", "stats"]);
    assert_eq!(code, 0, "{err}");
    let stats: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (stats["pending"].as_u64(), stats["dead"].as_u64()),
        (Some(0), Some(0)),
        "{stats}"
    );

    let after = event_ids(&moto.drain(&route.queue_url).await);
    assert_eq!(after.iter().cloned().collect::<BTreeSet<_>>(), failed_over);
    let all: Vec<&String> = before.iter().chain(&after).collect();
    assert_eq!(all.len(), 500, "none twice");
    let unique: BTreeSet<&String> = all.into_iter().collect();
    let expected: BTreeSet<&String> = published.iter().map(|(id, _)| id).collect();
    assert_eq!(unique, expected, "every one of the 500 ids");
}
