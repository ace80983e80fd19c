//! The `events` tool, run as a real process: output and exit codes.
#![cfg(feature = "cli")]
// A failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use events_core::publisher::{Accepted, BoxFuture, PublishError, Publisher};
use events_core::store::{EventStore, SqliteStore};
use events_core::{DomainEvent, Event, RawEvent};
use serde_json::Value;

#[derive(DomainEvent, Debug, Clone)]
#[event(
    company = "acme",
    service = "shop",
    version = 1,
    resource = "order",
    action = "placed"
)]
struct OrderPlaced {
    n: u64,
}

struct Fixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
    ids: Vec<String>,
}

async fn fixture(count: u64) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let store = SqliteStore::open(&path).unwrap();
    let events: Vec<RawEvent> = (1..=count)
        .map(|n| RawEvent::from_event(&Event::new(OrderPlaced { n })).unwrap())
        .collect();
    store.store(events.clone()).await.unwrap();
    // The first event is a dead letter.
    store
        .record_failure(
            events[0].id.clone(),
            "ValidationException: entry too large".into(),
            true,
        )
        .await
        .unwrap();
    Fixture {
        path,
        ids: events.iter().map(|e| e.id.to_string()).collect(),
        _dir: dir,
    }
}

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

fn events(store: &Path, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_events"))
        .arg("--store")
        .arg(store)
        .args(args)
        .env_remove("EVENT_BUS_MODE")
        .output()
        .unwrap();
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

#[tokio::test]
async fn stats_in_text_and_json() {
    let f = fixture(3).await;
    let out = events(&f.path, &["stats"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("pending: 2"), "{}", out.stdout);
    assert!(out.stdout.contains("dead letters: 1"), "{}", out.stdout);
    let out = events(&f.path, &["--json", "stats"]);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        (v["pending"].as_u64(), v["dead"].as_u64()),
        (Some(2), Some(1))
    );
}

#[tokio::test]
async fn list_show_and_dead_letters() {
    let f = fixture(3).await;
    let out = events(&f.path, &["list"]);
    assert_eq!(out.code, 0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", out.stdout);
    assert!(
        lines[0].contains(&f.ids[1]) && lines[1].contains(&f.ids[2]),
        "oldest first: {}",
        out.stdout
    );

    let out = events(&f.path, &["--json", "list", "--max", "1"]);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v.as_array().map(Vec::len), Some(1));
    assert_eq!(v[0]["id"], f.ids[1].as_str());
    assert_eq!(v[0]["name"], OrderPlaced::EVENT_NAME);

    let out = events(&f.path, &["--json", "show", &f.ids[2]]);
    assert_eq!(out.code, 0);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["attributes"]["n"], 3);
    assert_eq!(v["state"], "pending");
    let out = events(&f.path, &["show", &f.ids[0]]);
    assert!(out.stdout.contains("state: dead"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("last_error: ValidationException: entry too large"),
        "{}",
        out.stdout
    );

    let out = events(&f.path, &["show", "no-such-id"]);
    assert_eq!(out.code, 3);
    assert!(
        out.stderr.contains("no event with id `no-such-id`"),
        "{}",
        out.stderr
    );

    let out = events(&f.path, &["dead-letters"]);
    assert_eq!(out.code, 0);
    assert!(
        out.stdout.contains(&f.ids[0]) && out.stdout.contains("attempts=1"),
        "{}",
        out.stdout
    );
}

#[tokio::test]
async fn requeue_and_purge() {
    let f = fixture(3).await;
    let out = events(&f.path, &["requeue", &f.ids[1]]);
    assert_eq!(out.code, 3, "a pending event is not a dead letter");
    let out = events(&f.path, &["requeue", &f.ids[0]]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout.trim(), format!("requeued {}", f.ids[0]));
    let out = events(&f.path, &["--json", "stats"]);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        (v["pending"].as_u64(), v["dead"].as_u64()),
        (Some(3), Some(0))
    );

    let out = events(&f.path, &["purge"]);
    assert_eq!(out.code, 2, "purge must say what it deletes");
    assert!(out.stderr.contains("--dead"), "{}", out.stderr);
    let out = events(&f.path, &["purge", "--dead"]);
    assert_eq!(out.code, 0);
    assert_eq!(out.stdout.trim(), "purged 0 dead letter(s)");
}

#[tokio::test]
async fn errors_have_exit_codes_scripts_can_use() {
    let f = fixture(2).await;
    let out = events(&f.path.with_file_name("missing.db"), &["stats"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("no event store at"), "{}", out.stderr);
    assert!(
        !f.path.with_file_name("missing.db").exists(),
        "inspecting never creates a store"
    );

    let out = events(&f.path, &["frobnicate"]);
    assert_eq!(out.code, 2);

    let out = events(&f.path, &["replay"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("EVENT_BUS_MODE=eventbridge"),
        "{}",
        out.stderr
    );

    let out = Command::new(env!("CARGO_BIN_EXE_events"))
        .args(["--store"])
        .arg(&f.path)
        .arg("replay")
        .env("EVENT_BUS_MODE", "eventbridge")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("events-eventbridge"));
}

/// A remote that accepts everything but one event.
#[derive(Default)]
struct Remote {
    accepted: Mutex<Vec<u64>>,
    refuse: Option<u64>,
}

impl Publisher for Remote {
    fn name(&self) -> &str {
        "test"
    }
    fn publish<'a>(
        &'a self,
        events: &'a [RawEvent],
    ) -> BoxFuture<'a, Vec<Result<Accepted, PublishError>>> {
        Box::pin(async move {
            events
                .iter()
                .map(|e| {
                    let n = e.decode::<OrderPlaced>().unwrap().n;
                    if Some(n) == self.refuse {
                        return Err(PublishError::retryable(
                            "ThrottlingException",
                            "Rate exceeded",
                        ));
                    }
                    self.accepted.lock().unwrap().push(n);
                    Ok(Accepted::default())
                })
                .collect()
        })
    }
}

#[tokio::test]
async fn replay_with_a_publisher_reports_progress_and_results() {
    let f = fixture(26).await;
    let remote = Arc::new(Remote::default());
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let args = [
        "events",
        "--store",
        f.path.to_str().unwrap(),
        "--json",
        "replay",
        "--batch",
        "10",
    ];
    // SAFETY of the test: nothing else in this binary reads EVENT_BUS_MODE.
    std::env::set_var("EVENT_BUS_MODE", "eventbridge");
    let code = events_core::cli::run(args, Some(remote.clone()), &mut out, &mut err).await;
    std::env::remove_var("EVENT_BUS_MODE");
    let (out, err) = (
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        *remote.accepted.lock().unwrap(),
        (2..=26).collect::<Vec<u64>>(),
        "in order, dead letter skipped"
    );
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (v["sent"].as_u64(), v["pending"].as_u64()),
        (Some(25), Some(0))
    );
    assert!(
        err.contains("replayed 10/25") && err.contains("replayed 25/25"),
        "progress: {err}"
    );

    // A refused event stops the replay with exit code 4 and stays pending.
    let f = fixture(5).await;
    let remote = Arc::new(Remote {
        refuse: Some(3),
        ..Remote::default()
    });
    let (mut out, mut err) = (Vec::new(), Vec::new());
    std::env::set_var("EVENT_BUS_MODE", "eventbridge");
    let code = events_core::cli::run(
        ["events", "--store", f.path.to_str().unwrap(), "replay"],
        Some(remote.clone()),
        &mut out,
        &mut err,
    )
    .await;
    std::env::remove_var("EVENT_BUS_MODE");
    assert_eq!(code, 4);
    assert_eq!(
        String::from_utf8(out).unwrap().trim(),
        "sent 3, failed 1, dead-lettered 0, pending 1"
    );
}
