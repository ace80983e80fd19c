//! The `events` tool, run as a real process: output and exit codes.
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
    events_with(store, args, &[])
}

fn events_with(store: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_events"))
        .arg("--store")
        .arg(store)
        .args(args)
        .env_remove("EVENT_BUS_MODE")
        .envs(env.iter().copied())
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
    let value_of = |label: &str| {
        out.stdout
            .lines()
            .find_map(|l| l.strip_prefix(label))
            .and_then(|rest| rest.split_whitespace().next())
            .map(str::to_owned)
    };
    assert_eq!(value_of("pending:").as_deref(), Some("2"), "{}", out.stdout);
    assert_eq!(
        value_of("dead letters:").as_deref(),
        Some("1"),
        "{}",
        out.stdout
    );
    assert_eq!(value_of("handled:").as_deref(), Some("0"), "{}", out.stdout);
    assert!(
        out.stdout.contains("waiting for a remote bus"),
        "pending says what it waits for: {}",
        out.stdout
    );
    // Values line up in one column.
    let columns: std::collections::HashSet<usize> = out
        .stdout
        .lines()
        .skip(1)
        .map(|l| l.find(|c: char| c.is_ascii_digit()).unwrap())
        .collect();
    assert_eq!(columns.len(), 1, "aligned: {}", out.stdout);
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
    assert_eq!(lines.len(), 3, "a header and two events: {}", out.stdout);
    assert!(
        lines[1].contains(&f.ids[1]) && lines[2].contains(&f.ids[2]),
        "oldest first: {}",
        out.stdout
    );
    // Aligned columns: each column starts where its header does.
    for header in ["ID", "NAME", "OCCURRED ON", "LAST ATTEMPT"] {
        let at = lines[0].find(header).unwrap();
        for line in &lines[1..] {
            assert!(
                line[at..].starts_with(|c: char| c != ' ') && line[..at].ends_with("  "),
                "column {header} misaligned: {}",
                out.stdout
            );
        }
    }

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
    assert!(
        out.stdout.contains("state:           dead"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("last_error:      ValidationException: entry too large"),
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
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines[1].contains(&f.ids[0]), "{}", out.stdout);
    // The last attempt's time is in the text output, under its header.
    let at = lines[0].find("LAST ATTEMPT").unwrap();
    let shown = lines[1][at..].split_whitespace().next().unwrap();
    let stored = {
        let v: Value =
            serde_json::from_str(&events(&f.path, &["--json", "show", &f.ids[0]]).stdout).unwrap();
        v["last_attempt_at"].as_str().unwrap().to_owned()
    };
    assert_eq!(shown, stored, "{}", out.stdout);
    let attempts_at = lines[0].find("ATTEMPTS").unwrap();
    assert!(
        lines[1][attempts_at..].trim_start().starts_with('1'),
        "{}",
        out.stdout
    );
    assert!(lines[1].contains("ValidationException"), "{}", out.stdout);
}

#[tokio::test]
async fn empty_lists_say_so() {
    let f = fixture(1).await;
    let out = events(&f.path, &["purge", "--dead"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = events(&f.path, &["dead-letters"]);
    assert_eq!(out.code, 0);
    assert_eq!(out.stdout.trim(), "no dead letters");
    let out = events(&f.path, &["list"]);
    assert_eq!(out.stdout.trim(), "no pending events");
    let out = events(&f.path, &["--json", "dead-letters"]);
    assert_eq!(out.stdout.trim(), "[]");
}

#[tokio::test]
async fn read_commands_work_whatever_event_bus_mode_says() {
    let f = fixture(3).await;
    for mode in ["nonsense", "eventbridge", ""] {
        for args in [
            &["stats"][..],
            &["list"],
            &["dead-letters"],
            &["show", &f.ids[1]],
            &["check"],
        ] {
            let out = events_with(&f.path, args, &[("EVENT_BUS_MODE", mode)]);
            assert_eq!(
                out.code, 0,
                "EVENT_BUS_MODE={mode} {args:?}: {}",
                out.stderr
            );
        }
    }
}

#[tokio::test]
async fn read_commands_never_write_to_the_store() {
    let f = fixture(3).await;
    let before = std::fs::read(&f.path).unwrap();
    for args in [
        &["stats"][..],
        &["list"],
        &["dead-letters"],
        &["show", &f.ids[1]],
        &["check"],
    ] {
        let out = events(&f.path, args);
        assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
    }
    assert_eq!(std::fs::read(&f.path).unwrap(), before);
}

#[test]
fn a_file_that_is_not_a_store_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join(".env");
    let content = b"AWS_SECRET_ACCESS_KEY=do-not-touch\n".repeat(50);
    std::fs::write(&secrets, &content).unwrap();
    for args in [
        &["stats"][..],
        &["list"],
        &["requeue", "x"],
        &["purge", "--dead"],
        &["check", "--repair"],
    ] {
        let out = events(&secrets, args);
        assert_eq!(out.code, 1, "{args:?}");
        assert!(
            out.stderr.contains(".env") && out.stderr.contains("left untouched"),
            "{args:?}: {}",
            out.stderr
        );
    }
    assert_eq!(std::fs::read(&secrets).unwrap(), content);
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, [".env"], "nothing created beside it");
}

#[tokio::test]
async fn check_finds_an_unreadable_row_and_the_queue_still_lists() {
    let f = fixture(3).await;
    let out = events(&f.path, &["check"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("integrity: ok"), "{}", out.stdout);
    // Damage one byte of one row's time, as a bad sector would.
    {
        let conn = rusqlite::Connection::open(&f.path).unwrap();
        conn.execute(
            "UPDATE events SET occurred_on = '2026-1X-01T00:00:00.000000000Z' WHERE id = ?1",
            [&f.ids[1]],
        )
        .unwrap();
    }
    let out = events(&f.path, &["check"]);
    assert_eq!(out.code, 5, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("occurred_on"), "{}", out.stdout);
    // Read-only listing skips it; the rest shows.
    let out = events(&f.path, &["list"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains(&f.ids[2]), "{}", out.stdout);
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

    // The tool links events-eventbridge: in eventbridge mode it sets up the
    // EventBridge publisher from the same variables as the program, and a
    // bad one is an error naming it.
    let out = Command::new(env!("CARGO_BIN_EXE_events"))
        .args(["--store"])
        .arg(&f.path)
        .arg("replay")
        .env("EVENT_BUS_MODE", "eventbridge")
        .env("EVENT_BUS_MAX_REQUEST_BYTES", "lots")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("EVENT_BUS_MAX_REQUEST_BYTES=`lots` is not valid"),
        "{stderr}"
    );
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

/// The environment of a program in eventbridge mode, passed in rather than
/// set in this (multi-threaded) test binary.
fn eventbridge_mode(var: &str) -> Option<String> {
    (var == "EVENT_BUS_MODE").then(|| "eventbridge".to_owned())
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
    let code = events_cli::run_with_env(
        args,
        eventbridge_mode,
        Some(remote.clone()),
        &mut out,
        &mut err,
    )
    .await;
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
    let code = events_cli::run_with_env(
        ["events", "--store", f.path.to_str().unwrap(), "replay"],
        eventbridge_mode,
        Some(remote.clone()),
        &mut out,
        &mut err,
    )
    .await;
    assert_eq!(code, 4);
    assert_eq!(
        String::from_utf8(out).unwrap().trim(),
        "sent 3, failed 1, dead-lettered 0, pending 1"
    );
    // And says why (item 10 of the trial).
    let err = String::from_utf8(err).unwrap();
    assert!(
        err.contains("first failure: event ")
            && err.contains(": ThrottlingException: Rate exceeded"),
        "{err}"
    );
}
