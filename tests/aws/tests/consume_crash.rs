//! A consumer killed with SIGKILL mid-batch and restarted, as separate
//! processes (`consume_child`) against moto, with SQLite deduplication:
//! every event is handled at least once by each handler, and no handler
//! runs for an event it had been marked for (the ledger records, at each
//! run, whether the pair was already marked).

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use events_aws_tests::consume::{counts, envelope_body, queue, send};
use events_aws_tests::moto::Moto;
use events_core::Event;
use events_examples::domain::events::CompanyCreated;

const CONCURRENCY: usize = 5;

fn spawn(moto: &Moto, queue_url: &str, dir: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_consume_child"))
        .envs(moto.env())
        .env("EVENT_BUS_QUEUE_URL", queue_url)
        .env("EVENT_BUS_DEDUP", "sqlite")
        .env("EVENT_BUS_DEDUP_PATH", dir.join("dedup.db"))
        .env("EVENT_BUS_CONSUMER_CONCURRENCY", CONCURRENCY.to_string())
        .env("EVENT_BUS_WAIT_SECONDS", "1")
        .env("EVENT_BUS_VISIBILITY_TIMEOUT", "2")
        .env("CONSUME_LEDGER", dir.join("ledger.db"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start consume_child")
}

/// (event id, handler, was marked) of every handler run so far.
fn runs(dir: &Path) -> Vec<(String, String, bool)> {
    let path = dir.join("ledger.db");
    if !path.exists() {
        return Vec::new();
    }
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    let Ok(mut stmt) = conn.prepare("SELECT event_id, handler, was_marked FROM runs") else {
        return Vec::new(); // not created yet
    };
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_batch_then_restart_handles_everything_and_reruns_nothing_marked() {
    let moto = Moto::start();
    let q = queue(&moto, "crash", 2, None).await;
    let dir = tempfile::tempdir().unwrap();
    let events: Vec<Event<CompanyCreated>> = (0..60)
        .map(|i| {
            Event::new(CompanyCreated {
                company_id: uuid::Uuid::new_v4(),
                company_name: format!("company {i}"),
                country_id: uuid::Uuid::new_v4(),
            })
        })
        .collect();
    send(
        &moto,
        &q.queue_url,
        &events.iter().map(envelope_body).collect::<Vec<_>>(),
    )
    .await;

    // First consumer: killed once 30 handler runs are in the ledger.
    let mut first = spawn(&moto, &q.queue_url, dir.path());
    let deadline = Instant::now() + Duration::from_secs(60);
    while runs(dir.path()).len() < 30 {
        assert!(
            Instant::now() < deadline,
            "the first consumer made no progress"
        );
        assert!(
            first.try_wait().unwrap().is_none(),
            "the first consumer exited"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    let before = runs(dir.path()).len();
    assert!(before < 120, "killed mid-way: {before} of 120 runs");

    // Second consumer: runs until every event is handled by both and the
    // queue is empty, then SIGTERM.
    let second = spawn(&moto, &q.queue_url, dir.path());
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let runs = runs(dir.path());
        let pairs: std::collections::HashSet<(String, String)> = runs
            .iter()
            .map(|(id, h, _)| (id.clone(), h.clone()))
            .collect();
        if pairs.len() == 120 && counts(&moto, &q.queue_url).await == (0, 0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not all handled: {} pairs",
            pairs.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let status = Command::new("kill")
        .args(["-TERM", &second.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = second.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "graceful exit on SIGTERM: {}",
        out.status
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();

    let runs = runs(dir.path());
    let mut per_pair: HashMap<(String, String), usize> = HashMap::new();
    for (id, handler, _) in &runs {
        *per_pair.entry((id.clone(), handler.clone())).or_default() += 1;
    }
    for event in &events {
        for handler in ["first", "second"] {
            let n = per_pair
                .get(&(event.id().as_str().to_owned(), handler.to_owned()))
                .copied()
                .unwrap_or(0);
            assert!(n >= 1, "{} not handled by {handler}", event.id());
        }
    }
    let after_mark: Vec<_> = runs.iter().filter(|(_, _, marked)| *marked).collect();
    assert!(
        after_mark.is_empty(),
        "handlers ran after being marked: {after_mark:?}"
    );
    // Runs twice happen only for work that had not been marked when the
    // process died: at most the messages in flight, both handlers each.
    let twice = per_pair.values().filter(|n| **n > 1).count();
    eprintln!(
        "runs before the kill: {before}; total runs: {}; pairs run more than once (unmarked at the kill): {twice}; second consumer: {report}",
        runs.len()
    );
    assert!(twice <= 2 * CONCURRENCY, "{twice} pairs ran twice");
}
