//! Nothing lost, nothing duplicated, across real process kills (SIGKILL) of
//! a child writing to, replaying from, or repairing the store.
//!
//! `EVENTS_CRASH_ROUNDS` sets the kills per test (default 40: 120 kills in
//! all, about a minute on two cores).

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use events_core::store::{EventStore, SqliteOptions, SqliteStore};
use events_core::{Event, RawEvent};
use events_tests::RecordWritten;

const CHILD: &str = env!("CARGO_BIN_EXE_store_child");

fn rounds() -> usize {
    std::env::var("EVENTS_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40)
}

/// A small deterministic generator for kill delays (xorshift).
struct Delays(u64);

impl Delays {
    fn next_ms(&mut self, low: u64, high: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        low + self.0 % (high - low).max(1)
    }
}

fn spawn(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Child {
    let mut cmd = Command::new(CHILD);
    for a in args {
        cmd.arg(a);
    }
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn kill(mut child: Child) -> String {
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        stdout.read_to_string(&mut out).unwrap();
    }
    out
}

/// Complete lines only: a line cut by the kill was never fully printed.
fn complete_lines(out: &str) -> impl Iterator<Item = &str> {
    let end = out.rfind('\n').map_or(0, |i| i + 1);
    out[..end].lines()
}

fn count_by_id(path: &Path) -> HashMap<String, u64> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT id, COUNT(*) FROM events GROUP BY id")
        .unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
        .unwrap();
    rows.map(|r| r.unwrap())
        .map(|(id, n)| (id, n as u64))
        .collect()
}

#[test]
fn killed_writers_lose_and_duplicate_nothing_that_was_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let mut delays = Delays(0x9E37_79B9_7F4A_7C15);
    let mut acknowledged = Vec::new();
    let mut mid_write = 0;
    let rounds = rounds();
    for _ in 0..rounds {
        let mut child = spawn(&[&"store", &path]);
        // Kill only once the child writes (its first event acknowledged),
        // a random moment later.
        let mut lines = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        lines.read_line(&mut first).unwrap();
        std::thread::sleep(Duration::from_millis(delays.next_ms(0, 100)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let mut out = first;
        lines.read_to_string(&mut out).unwrap();
        let before = acknowledged.len();
        acknowledged.extend(complete_lines(&out).map(str::to_owned));
        // The child was writing when it died: it had acknowledged events
        // and never stops on its own.
        if acknowledged.len() > before {
            mid_write += 1;
        }
        // After every kill the store opens without damage, checked.
        let store = SqliteStore::open(&path).unwrap();
        let report = store.open_report();
        assert!(report.integrity_checked, "{report:?}");
        assert!(report.damaged_file.is_none(), "{report:?}");
        assert_eq!(report.acknowledged_missing, 0, "{report:?}");
    }
    assert_eq!(
        mid_write, rounds,
        "only {mid_write} of {rounds} kills landed while writing"
    );
    let stored = count_by_id(&path);
    for id in &acknowledged {
        assert_eq!(
            stored.get(id),
            Some(&1),
            "acknowledged event {id} must be stored exactly once"
        );
    }
    // Every stored event decodes.
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let store = SqliteStore::open(&path).unwrap();
    let all = rt.block_on(store.peek(usize::MAX)).unwrap();
    assert_eq!(all.len(), stored.len());
    assert!(all
        .iter()
        .all(|s| s.event.decode::<RecordWritten>().is_ok()));
    eprintln!(
        "writers: {rounds} kills, {} acknowledged, {} stored, 0 lost, 0 duplicated",
        acknowledged.len(),
        stored.len()
    );
}

/// Reads the child's lines until one starts with `prefix` (or it ends).
fn wait_for(lines: &mut impl BufRead, prefix: &str, seen: &mut Vec<String>) -> bool {
    let mut line = String::new();
    loop {
        line.clear();
        match lines.read_line(&mut line) {
            Ok(0) | Err(_) => return false,
            Ok(_) => {
                seen.push(line.trim().to_owned());
                if line.starts_with(prefix) {
                    return true;
                }
            }
        }
    }
}

#[test]
fn replays_killed_mid_send_lose_nothing_and_resend_only_the_batch_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let sent_log = dir.path().join("sent.log");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let count = (rounds() as u64 * 75).max(3000);
    let originals: Vec<RawEvent> = (0..count)
        .map(|n| RawEvent::from_event(&Event::new(RecordWritten { task: 9, n })).unwrap())
        .collect();
    {
        let store = SqliteStore::open(&path).unwrap();
        rt.block_on(store.store(originals.clone())).unwrap();
    }
    let all: HashSet<String> = originals.iter().map(|e| e.id.to_string()).collect();
    let mut delays = Delays(0xD1B5_4A32_D192_ED03);
    let mut killed: HashSet<String> = HashSet::new();
    let (mut mid_replay, mut rounds_done) = (0, 0);
    let rounds = rounds();
    // A short lease: a killed replayer's claims come back quickly.
    let lease = "200";
    for _ in 0..rounds {
        let mut child = spawn(&[&"replay", &path, &sent_log, &lease]);
        let pid = child.id().to_string();
        let mut lines = BufReader::new(child.stdout.take().unwrap());
        let mut seen = Vec::new();
        // Kill only once a batch was sent, a moment later.
        let started = wait_for(&mut lines, "sent", &mut seen);
        std::thread::sleep(Duration::from_millis(delays.next_ms(0, 15)));
        let rest = kill(child);
        rounds_done += 1;
        let mut rest_text = String::new();
        lines.read_to_string(&mut rest_text).unwrap_or(0);
        let finished =
            seen.iter().any(|l| l == "done") || rest.contains("done") || rest_text.contains("done");
        if started && !finished {
            mid_replay += 1;
            killed.insert(pid);
        }
        check_replay(&path, &sent_log, &all, &killed);
        if count_by_id(&path).is_empty() {
            break;
        }
    }
    assert!(
        mid_replay * 10 >= rounds_done * 9 && rounds_done * 10 >= rounds * 9,
        "only {mid_replay} of {rounds_done} kills landed between a send and the end"
    );
    // Then a replay left to finish sends the rest.
    let status = Command::new(CHILD)
        .arg("replay")
        .arg(&path)
        .arg(&sent_log)
        .arg(lease)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let duplicated = check_replay(&path, &sent_log, &all, &killed);
    assert!(count_by_id(&path).is_empty());
    eprintln!(
        "replay: {rounds_done} kills ({mid_replay} mid-replay), {} events, 0 lost, {duplicated} sent twice (each in a killed replayer's batch in flight)",
        all.len()
    );
}

/// Nothing lost, nothing removed before it was sent, and an event sent
/// twice only when the first sender was killed with it in flight (at most
/// one batch of 5 per kill). Returns how many were sent twice.
fn check_replay(
    path: &Path,
    sent_log: &Path,
    all: &HashSet<String>,
    killed: &HashSet<String>,
) -> usize {
    let pending: HashSet<String> = count_by_id(path).into_keys().collect();
    let log = std::fs::read_to_string(sent_log).unwrap_or_default();
    let mut senders: HashMap<&str, Vec<&str>> = HashMap::new();
    for line in complete_lines(&log) {
        let (pid, id) = line.split_once(' ').unwrap();
        senders.entry(id).or_default().push(pid);
    }
    for id in all {
        assert!(
            pending.contains(id) || senders.contains_key(id.as_str()),
            "event {id} was lost"
        );
    }
    for id in all.difference(&pending) {
        assert!(
            senders.contains_key(id.as_str()),
            "event {id} was removed before it was sent"
        );
    }
    let mut resent_per_pid: HashMap<&str, usize> = HashMap::new();
    let mut duplicated = 0;
    for (id, pids) in &senders {
        if pids.len() > 1 {
            duplicated += 1;
            for pid in &pids[..pids.len() - 1] {
                assert!(
                    killed.contains(*pid),
                    "event {id} sent twice though its first sender {pid} was not killed"
                );
                *resent_per_pid.entry(pid).or_default() += 1;
            }
        }
    }
    for (pid, n) in resent_per_pid {
        assert!(
            n <= 5,
            "{n} events of killed replayer {pid} were sent again"
        );
    }
    duplicated
}

/// Overwrites the page holding `needle` with noise.
fn damage_page_with(path: &Path, needle: &str) {
    let mut bytes = std::fs::read(path).unwrap();
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle.as_bytes())
        .unwrap();
    let start = at / 4096 * 4096;
    for (i, b) in bytes[start..start + 4096].iter_mut().enumerate() {
        *b = (i * 31 + 7) as u8;
    }
    std::fs::write(path, bytes).unwrap();
}

fn fresh_damaged_copy(template: &Path, path: &Path) {
    let dir = path.parent().unwrap();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name().to_string_lossy().starts_with("events.db") {
            std::fs::remove_file(entry.path()).unwrap();
        }
    }
    std::fs::copy(template, path).unwrap();
}

fn ids_in(path: &Path) -> HashMap<String, u64> {
    count_by_id(path)
}

#[test]
fn repairs_killed_midway_lose_nothing_the_repair_would_keep() {
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("template.db");
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let path = work.join("events.db");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let originals: Vec<RawEvent> = (0..10_000)
        .map(|n| RawEvent::from_event(&Event::new(RecordWritten { task: 1, n })).unwrap())
        .collect();
    {
        let store = SqliteStore::open(&template).unwrap();
        rt.block_on(store.store(originals.clone())).unwrap();
    }
    for suffix in ["-lock", "-state"] {
        let _ = std::fs::remove_file(dir.path().join(format!("template.db{suffix}")));
    }
    // A page of the table (the id followed by the name occurs only there).
    damage_page_with(&template, &format!("{}acme.crash", originals[5_000].id));

    // What an uninterrupted repair keeps.
    fresh_damaged_copy(&template, &path);
    let out = Command::new(CHILD).arg("open").arg(&path).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("opened"));
    let kept = ids_in(&path);
    assert!(kept.len() > 9_000 && kept.len() < 10_000, "{}", kept.len());

    // Each kill lands at a step of the repair seen from outside (its work
    // files appearing in turn), a few polls later: chosen by count, never
    // by the machine's speed.
    let steps = ["events.db.reading", "events.db.salvage", "events.db.repair"];
    let mut delays = Delays(0xA076_1D64_78BD_642F);
    let (mut mid_repair, mut rounds_done) = (0, 0);
    let rounds = rounds();
    for round in 0..rounds {
        fresh_damaged_copy(&template, &path);
        let mut child = spawn(&[&"open", &path]);
        let step = work.join(steps[round % steps.len()]);
        let extra_polls = delays.next_ms(0, 4);
        let mut seen_at = None;
        for poll in 0..600_000u64 {
            if seen_at.is_none() && step.exists() {
                seen_at = Some(poll);
            }
            if seen_at.is_some_and(|at| poll >= at + extra_polls) {
                break;
            }
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_micros(100));
        }
        let out = kill(child);
        rounds_done += 1;
        // Proof the kill landed inside the repair: its work files remain.
        let leftovers = ["events.db.salvage", "events.db.repair", "events.db.reading"]
            .iter()
            .any(|name| work.join(name).exists());
        if leftovers && !out.contains("opened") {
            mid_repair += 1;
        }
        let store = SqliteStore::open_with(
            &path,
            SqliteOptions {
                check_integrity: true,
                ..SqliteOptions::default()
            },
        )
        .unwrap();
        drop(store);
        let now = ids_in(&path);
        assert_eq!(
            now, kept,
            "the repaired store keeps every readable event once"
        );
        assert!(!work.join("events.db.repair").exists());
        assert!(
            std::fs::read_dir(&work).unwrap().any(|e| e
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains(".damaged-")),
            "the damaged original is kept"
        );
    }
    assert!(
        mid_repair * 3 >= rounds_done,
        "only {mid_repair} of {rounds_done} kills landed inside a repair"
    );
    eprintln!(
        "repair: {rounds_done} kills ({mid_repair} inside a repair), {} of 10000 rows kept every time, 0 duplicated",
        kept.len()
    );
}
