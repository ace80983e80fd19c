//! Nothing lost, nothing duplicated, across real process kills (SIGKILL at
//! random moments) of a child writing to or replaying from the store.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use events_core::store::{EventStore, SqliteStore};
use events_core::{Event, RawEvent};
use events_tests::RecordWritten;

const CHILD: &str = env!("CARGO_BIN_EXE_store_child");

/// A small deterministic generator for kill delays (xorshift).
struct Delays(u64);

impl Delays {
    fn next_ms(&mut self, low: u64, high: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        low + self.0 % (high - low)
    }
}

fn kill_after(mut command: Command, delay: Duration) -> String {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(delay);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
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
    for _ in 0..50 {
        let mut cmd = Command::new(CHILD);
        cmd.arg("store").arg(&path);
        let out = kill_after(cmd, Duration::from_millis(delays.next_ms(20, 120)));
        acknowledged.extend(complete_lines(&out).map(str::to_owned));

        // After every kill the store opens cleanly (no damaged file).
        let store = SqliteStore::open(&path).unwrap();
        assert!(
            store.open_report().damaged_file.is_none(),
            "{:?}",
            store.open_report()
        );
    }
    assert!(
        acknowledged.len() > 100,
        "the child stored too little to prove anything: {}",
        acknowledged.len()
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
    assert!(all
        .iter()
        .all(|s| s.event.decode::<RecordWritten>().is_ok()));
}

#[test]
fn killed_replays_lose_nothing_and_remove_nothing_before_it_was_sent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let sent_log = dir.path().join("sent.log");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let originals: Vec<RawEvent> = (0..400)
        .map(|n| RawEvent::from_event(&Event::new(RecordWritten { task: 9, n })).unwrap())
        .collect();
    {
        let store = SqliteStore::open(&path).unwrap();
        rt.block_on(store.store(originals.clone())).unwrap();
    }
    let all: HashSet<String> = originals.iter().map(|e| e.id.to_string()).collect();
    let mut delays = Delays(0xD1B5_4A32_D192_ED03);
    let check = || {
        let pending: HashSet<String> = count_by_id(&path).into_keys().collect();
        let sent: HashSet<String> = std::fs::read_to_string(&sent_log)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect();
        for id in &all {
            assert!(
                pending.contains(id) || sent.contains(id),
                "event {id} was lost"
            );
        }
        for id in all.difference(&pending) {
            assert!(
                sent.contains(id),
                "event {id} was removed before it was sent"
            );
        }
        pending.len()
    };
    for _ in 0..50 {
        let mut cmd = Command::new(CHILD);
        cmd.arg("replay").arg(&path).arg(&sent_log);
        kill_after(cmd, Duration::from_millis(delays.next_ms(5, 40)));
        if check() == 0 {
            break;
        }
    }
    // Then a replay left to finish sends the rest.
    let status = Command::new(CHILD)
        .arg("replay")
        .arg(&path)
        .arg(&sent_log)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(check(), 0);
}
