//! The failover store (SPEC §7): semantics of both stores, concurrency,
//! damage after crashes, limits, and replay through the bus.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use events_core::publisher::{Accepted, BoxFuture, PublishError, Publisher};
use events_core::store::{EventStore, MemoryStore, SqliteOptions, SqliteStore, StoreError};
use events_core::{BusError, DomainEvent, Event, EventBus, EventId, Mode, RawEvent};

#[derive(DomainEvent, Debug, Clone, PartialEq)]
#[event(
    company = "acme",
    service = "shop",
    version = 1,
    resource = "order",
    action = "placed"
)]
struct OrderPlaced {
    n: u64,
    note: String,
}

fn raw(n: u64) -> RawEvent {
    RawEvent::from_event(&Event::new(OrderPlaced {
        n,
        note: "x".repeat(200),
    }))
    .unwrap()
}

fn n_of(raw: &RawEvent) -> u64 {
    raw.decode::<OrderPlaced>().unwrap().n
}

fn stores() -> Vec<(&'static str, Arc<dyn EventStore>, tempfile::TempDir)> {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(dir.path().join("events.db")).unwrap();
    vec![
        (
            "memory",
            Arc::new(MemoryStore::new()),
            tempfile::tempdir().unwrap(),
        ),
        ("sqlite", Arc::new(sqlite), dir),
    ]
}

#[tokio::test]
async fn peek_ack_consume_keep_order_and_never_duplicate() {
    for (kind, store, _dir) in stores() {
        let events: Vec<RawEvent> = (1..=5).map(raw).collect();
        store.store(events[..3].to_vec()).await.unwrap();
        store.store(events[3..].to_vec()).await.unwrap();
        // Storing an id again (a retried store) is a no-op.
        store.store(vec![events[0].clone()]).await.unwrap();
        assert_eq!(store.stats().await.unwrap().pending, 5, "{kind}");

        let oldest = store.peek(2).await.unwrap();
        assert_eq!(
            oldest.iter().map(|s| n_of(&s.event)).collect::<Vec<_>>(),
            [1, 2],
            "{kind}"
        );
        assert_eq!(oldest[0].event, events[0], "{kind}: stored byte for byte");
        assert!(oldest[0].seq < oldest[1].seq);

        // Acknowledge only what was sent; an unknown id removes nothing.
        let removed = store
            .ack(vec![events[1].id.clone(), EventId::from("nope")])
            .await
            .unwrap();
        assert_eq!(removed, 1, "{kind}");
        let taken = store.consume(2).await.unwrap();
        assert_eq!(
            taken.iter().map(|s| n_of(&s.event)).collect::<Vec<_>>(),
            [1, 3],
            "{kind}"
        );
        let rest = store.peek(10).await.unwrap();
        assert_eq!(
            rest.iter().map(|s| n_of(&s.event)).collect::<Vec<_>>(),
            [4, 5],
            "{kind}"
        );
        assert!(
            store.get(events[0].id.clone()).await.unwrap().is_none(),
            "{kind}: consumed"
        );
        assert_eq!(
            store
                .get(events[3].id.clone())
                .await
                .unwrap()
                .map(|s| s.event),
            Some(events[3].clone())
        );
    }
}

#[tokio::test]
async fn dead_letters_keep_error_attempts_and_time_and_can_be_requeued() {
    for (kind, store, _dir) in stores() {
        let events: Vec<RawEvent> = (1..=3).map(raw).collect();
        store.store(events.clone()).await.unwrap();
        store
            .record_failure(
                events[0].id.clone(),
                "ThrottlingException: slow down".into(),
                false,
            )
            .await
            .unwrap();
        store
            .record_failure(
                events[0].id.clone(),
                "ValidationException: too big".into(),
                true,
            )
            .await
            .unwrap();

        let dead = store.dead_letters(10).await.unwrap();
        assert_eq!(dead.len(), 1, "{kind}");
        assert_eq!(dead[0].event.id, events[0].id);
        assert_eq!(dead[0].attempts, 2);
        assert_eq!(
            dead[0].last_error.as_deref(),
            Some("ValidationException: too big")
        );
        assert!(dead[0].last_attempt_at.is_some());
        assert!(dead[0].is_dead());
        // Dead letters are not replayed, nor consumed.
        let pending = store.peek(10).await.unwrap();
        assert_eq!(
            pending.iter().map(|s| n_of(&s.event)).collect::<Vec<_>>(),
            [2, 3],
            "{kind}"
        );
        let stats = store.stats().await.unwrap();
        assert_eq!((stats.pending, stats.dead), (2, 1), "{kind}");

        assert!(
            !store.requeue(events[1].id.clone()).await.unwrap(),
            "{kind}: not a dead letter"
        );
        assert!(store.requeue(events[0].id.clone()).await.unwrap(), "{kind}");
        let pending = store.peek(10).await.unwrap();
        assert_eq!(
            pending.iter().map(|s| n_of(&s.event)).collect::<Vec<_>>(),
            [2, 3, 1],
            "{kind}: at the end"
        );
        assert_eq!(pending[2].attempts, 0);

        store
            .record_failure(events[1].id.clone(), "gone".into(), true)
            .await
            .unwrap();
        assert_eq!(store.purge_dead().await.unwrap(), 1, "{kind}");
        assert_eq!(store.stats().await.unwrap().dead, 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_concurrent_writers_lose_and_duplicate_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path().join("events.db")).unwrap());
    let mut tasks = Vec::new();
    for writer in 0..8u64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..50 {
                let event = raw(writer * 1000 + i);
                ids.push(event.id.clone());
                store.store(vec![event]).await.unwrap();
            }
            ids
        }));
    }
    let mut written = Vec::new();
    for task in tasks {
        written.extend(task.await.unwrap());
    }
    let stored = store.peek(1000).await.unwrap();
    assert_eq!(stored.len(), 400);
    let ids: HashSet<&EventId> = stored.iter().map(|s| &s.event.id).collect();
    assert_eq!(ids.len(), 400);
    assert!(written.iter().all(|id| ids.contains(id)));
    // Each writer's events keep their order.
    let mut last: HashMap<u64, u64> = HashMap::new();
    for s in &stored {
        let n = n_of(&s.event);
        if let Some(prev) = last.insert(n / 1000, n % 1000) {
            assert!(prev < n % 1000);
        }
    }
}

#[tokio::test]
async fn a_newer_schema_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    drop(SqliteStore::open(&path).unwrap());
    let conn = rusqlite_conn(&path);
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::NewerSchema {
                found: 99,
                supported: 2,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("schema version 99"), "{err}");
}

fn rusqlite_conn(path: &std::path::Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap()
}

#[tokio::test]
async fn a_full_disk_fails_publish_and_says_the_event_was_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_with(
        dir.path().join("events.db"),
        SqliteOptions {
            max_size_bytes: Some(64 * 1024),
            ..SqliteOptions::default()
        },
    )
    .unwrap();
    let bus = EventBus::builder().store(Arc::new(store)).build().unwrap();
    let mut stored = 0;
    let err = loop {
        match bus
            .publish(OrderPlaced {
                n: stored,
                note: "y".repeat(2000),
            })
            .await
        {
            Ok(_) => stored += 1,
            Err(e) => break e,
        }
        assert!(stored < 1000, "the limit never hit");
    };
    let text = err.to_string();
    assert!(
        matches!(&err, BusError::NotDelivered { failed, .. } if failed.len() == 1),
        "{text}"
    );
    assert!(text.contains("not stored"), "{text}");
    assert!(text.contains("full"), "{text}");
    // Everything acknowledged before is still there (handled: local mode).
    let stats = bus.store().unwrap().stats().await.unwrap();
    assert_eq!(stats.pending + stats.handled, stored, "{stats:?}");
}

#[tokio::test]
async fn a_torn_write_at_the_end_of_the_log_is_detected_and_the_rest_kept() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live.db");
    let store = SqliteStore::open(&live).unwrap();
    let events: Vec<RawEvent> = (1..=20).map(raw).collect();
    for e in &events {
        store.store(vec![e.clone()]).await.unwrap();
    }
    // The files as a crash would leave them (the store is still open, so the
    // log is not checkpointed), with the last frame half written.
    let crashed = dir.path().join("crashed.db");
    std::fs::copy(&live, &crashed).unwrap();
    let wal = std::fs::read(dir.path().join("live.db-wal")).unwrap();
    std::fs::write(dir.path().join("crashed.db-wal"), &wal[..wal.len() - 1000]).unwrap();

    let reopened = SqliteStore::open(&crashed).unwrap();
    let report = reopened.open_report().clone();
    assert!(report.torn_wal_bytes > 0, "{report:?}");
    assert!(report.damaged_file.is_none(), "{report:?}");
    let kept = reopened.peek(100).await.unwrap();
    // Only the write in progress (the last one) is gone.
    assert_eq!(kept.len(), 19, "{report:?}");
    assert!(kept.iter().zip(&events).all(|(k, e)| &k.event == e));
}

#[tokio::test]
async fn a_damaged_database_file_is_moved_aside_and_its_readable_rows_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let events: Vec<RawEvent> = (1..=2000).map(raw).collect();
    {
        let store = SqliteStore::open(&path).unwrap();
        store.store(events.clone()).await.unwrap();
    }
    // Cut the file mid-page, well inside the table.
    let len = std::fs::metadata(&path).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(len * 3 / 4 + 100).unwrap();
    drop(file);

    let store = SqliteStore::open(&path).unwrap();
    let report = store.open_report().clone();
    let damaged = report.damaged_file.clone().expect("damage detected");
    assert!(damaged.exists(), "the damaged file is kept for inspection");
    assert!(report.rows_recovered > 1000, "{report:?}");
    assert!(report.rows_recovered < 2000, "{report:?}");
    let kept = store.peek(5000).await.unwrap();
    assert_eq!(kept.len() as u64, report.rows_recovered);
    let originals: HashMap<&EventId, &RawEvent> = events.iter().map(|e| (&e.id, e)).collect();
    assert!(
        kept.iter().all(|k| originals[&k.event.id] == &k.event),
        "recovered rows are intact"
    );
    // And the store works.
    store.store(vec![raw(9999)]).await.unwrap();
}

// ------------------------------------------------------------------ replay

/// A remote bus whose answers the test scripts: it records what it accepted,
/// in order, fails the events it is told to, and refuses everything while
/// it is "down" (for its first `down_for` calls).
#[derive(Default)]
struct ScriptedRemote {
    accepted: Mutex<Vec<u64>>,
    failures: Mutex<HashMap<u64, PublishError>>,
    calls: Mutex<u32>,
    down_for: u32,
}

impl Publisher for ScriptedRemote {
    fn name(&self) -> &str {
        "scripted"
    }
    fn publish<'a>(
        &'a self,
        events: &'a [RawEvent],
    ) -> BoxFuture<'a, Vec<Result<Accepted, PublishError>>> {
        Box::pin(async move {
            let mut calls = self.calls.lock().unwrap();
            *calls += 1;
            let down = *calls <= self.down_for;
            let failures = self.failures.lock().unwrap();
            events
                .iter()
                .map(|e| {
                    let n = n_of(e);
                    if down {
                        return Err(PublishError::retryable("InternalFailure", "down"));
                    }
                    match failures.get(&n) {
                        Some(err) => Err(err.clone()),
                        None => {
                            self.accepted.lock().unwrap().push(n);
                            Ok(Accepted::default())
                        }
                    }
                })
                .collect()
        })
    }
}

#[tokio::test]
async fn replay_sends_in_order_removes_only_accepted_and_dead_letters_permanent_failures() {
    let store = Arc::new(MemoryStore::new());
    store.store((1..=6).map(raw).collect()).await.unwrap();
    let remote = Arc::new(ScriptedRemote::default());
    remote.failures.lock().unwrap().extend([
        (
            2,
            PublishError::retryable("ThrottlingException", "Rate exceeded"),
        ),
        (
            4,
            PublishError::permanent(
                "ValidationException",
                "Total size of the entries in the request is over the limit",
            ),
        ),
    ]);
    let bus = EventBus::builder()
        .mode(Mode::EventBridge)
        .store(store.clone())
        .publisher(remote.clone())
        .max_permanent_failures(2)
        .build()
        .unwrap();

    let report = bus.publish_from_failover(4).await.unwrap();
    assert_eq!(
        *remote.accepted.lock().unwrap(),
        [1, 3],
        "in order, only the oldest 4 tried"
    );
    assert_eq!(report.sent.len(), 2);
    assert_eq!(report.failed.len(), 2, "{report:?}");
    let pending: Vec<u64> = store
        .peek(10)
        .await
        .unwrap()
        .iter()
        .map(|s| n_of(&s.event))
        .collect();
    assert_eq!(pending, [2, 4, 5, 6]);

    // Second round: 4 fails permanently again and becomes a dead letter.
    let report = bus.publish_from_failover(10).await.unwrap();
    assert_eq!(report.dead_lettered.len(), 1, "{report:?}");
    assert_eq!(*remote.accepted.lock().unwrap(), [1, 3, 5, 6]);
    let dead = store.dead_letters(10).await.unwrap();
    assert_eq!(n_of(&dead[0].event), 4);
    assert_eq!(dead[0].attempts, 2);
    assert!(dead[0]
        .last_error
        .as_deref()
        .unwrap()
        .contains("ValidationException"));

    // Throttling never dead-letters; once the remote recovers, it goes out.
    remote.failures.lock().unwrap().remove(&2);
    bus.publish_from_failover(10).await.unwrap();
    assert_eq!(*remote.accepted.lock().unwrap(), [1, 3, 5, 6, 2]);
    assert_eq!(store.stats().await.unwrap().pending, 0);
}

#[tokio::test]
async fn eventbridge_mode_fails_over_refused_events_to_the_store() {
    let store = Arc::new(MemoryStore::new());
    let remote = Arc::new(ScriptedRemote::default());
    remote
        .failures
        .lock()
        .unwrap()
        .insert(2, PublishError::retryable("InternalFailure", "try again"));
    let bus = EventBus::builder()
        .mode(Mode::EventBridge)
        .store(store.clone())
        .publisher(remote.clone())
        .build()
        .unwrap();
    let outcome = bus
        .publish_batch([
            Event::new(OrderPlaced {
                n: 1,
                note: String::new(),
            }),
            Event::new(OrderPlaced {
                n: 2,
                note: String::new(),
            }),
        ])
        .await
        .unwrap();
    assert_eq!(
        outcome.events[0].delivery(),
        &events_core::Delivery::Published { remote_id: None }
    );
    assert!(
        matches!(outcome.events[1].delivery(), events_core::Delivery::FailedOver { error } if error.contains("InternalFailure"))
    );
    let pending = store.peek(10).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(
        &pending[0].event.id,
        outcome.events[1].id(),
        "identity kept through failover"
    );
}

#[tokio::test]
async fn replay_needs_a_publisher() {
    let bus = EventBus::builder().in_memory_store().build().unwrap();
    let err = bus.publish_from_failover(10).await.unwrap_err();
    assert!(
        matches!(err, BusError::NoPublisher { mode: Mode::Local }),
        "{err}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_background_replayer_backs_off_while_the_remote_is_down_and_drains_after() {
    let store = Arc::new(MemoryStore::new());
    store.store((1..=25).map(raw).collect()).await.unwrap();
    let remote = Arc::new(ScriptedRemote {
        down_for: 3,
        ..ScriptedRemote::default()
    });
    let bus = EventBus::builder()
        .mode(Mode::EventBridge)
        .store(store.clone())
        .publisher(remote.clone())
        .build()
        .unwrap();
    let replayer = bus
        .spawn_replayer(events_core::ReplayerOptions {
            interval: std::time::Duration::from_secs(1),
            max_backoff: std::time::Duration::from_secs(60),
            batch: 10,
        })
        .unwrap();

    // Three failed rounds back off 1 → ~2 → ~4 → ~8 s; well within 30 s.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(
        *remote.calls.lock().unwrap(),
        1,
        "first round after one interval"
    );
    assert_eq!(store.stats().await.unwrap().pending, 25);
    tokio::time::sleep(std::time::Duration::from_secs(30)).await;
    assert_eq!(
        *remote.calls.lock().unwrap(),
        3 + 3,
        "three refused rounds, then three batches"
    );
    assert_eq!(
        *remote.accepted.lock().unwrap(),
        (1..=25).collect::<Vec<_>>()
    );
    assert_eq!(store.stats().await.unwrap().pending, 0);
    replayer.stop().await;

    // Without a publisher there is nothing to replay to.
    let local = EventBus::builder().in_memory_store().build().unwrap();
    assert!(matches!(
        local.spawn_replayer(Default::default()),
        Err(BusError::NoPublisher { .. })
    ));
}

// ------------------------------------------------- the two stores agree

#[derive(Debug, Clone)]
enum Op {
    Store(Vec<u8>),
    Peek(usize),
    Ack(Vec<u8>),
    Consume(usize),
    Fail(u8, bool),
    Requeue(u8),
    PurgeDead,
    DeadLetters(usize),
}

fn op() -> impl proptest::strategy::Strategy<Value = Op> {
    use proptest::prelude::*;
    prop_oneof![
        3 => prop::collection::vec(0u8..6, 1..4).prop_map(Op::Store),
        1 => (0usize..6).prop_map(Op::Peek),
        2 => prop::collection::vec(0u8..6, 1..3).prop_map(Op::Ack),
        1 => (0usize..4).prop_map(Op::Consume),
        2 => (0u8..6, any::<bool>()).prop_map(|(k, dead)| Op::Fail(k, dead)),
        1 => (0u8..6).prop_map(Op::Requeue),
        1 => Just(Op::PurgeDead),
        1 => (0usize..6).prop_map(Op::DeadLetters),
    ]
}

/// What a store answered, without store-specific details (`seq` numbers and
/// timestamps differ between the two).
#[derive(Debug, PartialEq)]
enum Answer {
    Unit,
    Count(usize),
    Flag(bool),
    Events(Vec<(String, u32, bool, Option<String>)>),
}

fn events_answer(events: Vec<events_core::store::StoredEvent>) -> Answer {
    Answer::Events(
        events
            .into_iter()
            .map(|s| {
                (
                    s.event.id.to_string(),
                    s.attempts,
                    s.is_dead(),
                    s.last_error,
                )
            })
            .collect(),
    )
}

async fn apply(store: &dyn EventStore, op: &Op, pool: &[RawEvent]) -> Answer {
    let id = |k: &u8| pool[usize::from(*k)].id.clone();
    match op {
        Op::Store(keys) => {
            store
                .store(keys.iter().map(|k| pool[usize::from(*k)].clone()).collect())
                .await
                .unwrap();
            Answer::Unit
        }
        Op::Peek(n) => events_answer(store.peek(*n).await.unwrap()),
        Op::Ack(keys) => Answer::Count(store.ack(keys.iter().map(id).collect()).await.unwrap()),
        Op::Consume(n) => events_answer(store.consume(*n).await.unwrap()),
        Op::Fail(k, dead) => {
            store
                .record_failure(id(k), format!("error {k}"), *dead)
                .await
                .unwrap();
            Answer::Unit
        }
        Op::Requeue(k) => Answer::Flag(store.requeue(id(k)).await.unwrap()),
        Op::PurgeDead => Answer::Count(store.purge_dead().await.unwrap()),
        Op::DeadLetters(n) => events_answer(store.dead_letters(*n).await.unwrap()),
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// Any sequence of operations gets the same answers from the SQLite store
    /// and from the in-memory model, and leaves the same content.
    #[test]
    fn sqlite_store_behaves_like_the_model(ops in proptest::collection::vec(op(), 1..40)) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let sqlite = SqliteStore::open(dir.path().join("events.db")).unwrap();
        let model = MemoryStore::new();
        let pool: Vec<RawEvent> = (0..6).map(raw).collect();
        rt.block_on(async {
            for op in &ops {
                let expected = apply(&model, op, &pool).await;
                let actual = apply(&sqlite, op, &pool).await;
                assert_eq!(actual, expected, "after {op:?}");
            }
            assert_eq!(sqlite.stats().await.unwrap(), model.stats().await.unwrap());
            assert_eq!(
                events_answer(sqlite.peek(100).await.unwrap()),
                events_answer(model.peek(100).await.unwrap())
            );
        });
    }
}

// ------------------------------------------- damage and contention (issue 7)

const CHILD: &str = env!("CARGO_BIN_EXE_store_child");

fn files_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn options() -> SqliteOptions {
    SqliteOptions::default()
}

async fn filled(path: &std::path::Path, count: u64) -> Vec<RawEvent> {
    let events: Vec<RawEvent> = (1..=count).map(raw).collect();
    let store = SqliteStore::open(path).unwrap();
    store.store(events.clone()).await.unwrap();
    events
}

#[test]
fn a_file_that_is_not_an_event_store_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    // A text file (secrets), a foreign SQLite database, one with another
    // application's id.
    let secrets = dir.path().join(".env");
    std::fs::write(&secrets, b"AWS_SECRET_ACCESS_KEY=abc\n".repeat(100)).unwrap();
    let foreign = dir.path().join("app.db");
    {
        let conn = rusqlite::Connection::open(&foreign).unwrap();
        conn.execute_batch("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO users (name) VALUES ('ann');")
            .unwrap();
    }
    let other_app = dir.path().join("other.db");
    {
        let conn = rusqlite::Connection::open(&other_app).unwrap();
        conn.execute_batch("PRAGMA application_id = 1234; CREATE TABLE events (x);")
            .unwrap();
    }
    let before = files_in(dir.path());
    for path in [&secrets, &foreign, &other_app] {
        let bytes = std::fs::read(path).unwrap();
        for read_only in [false, true] {
            let err = if read_only {
                SqliteStore::open_read_only(path).unwrap_err()
            } else {
                SqliteStore::open(path).unwrap_err()
            };
            let text = err.to_string();
            assert!(matches!(err, StoreError::NotAStore { .. }), "{text}");
            assert!(
                text.contains(&path.display().to_string()) && text.contains("left untouched"),
                "{text}"
            );
            assert_eq!(std::fs::read(path).unwrap(), bytes, "{}", path.display());
        }
    }
    assert_eq!(files_in(dir.path()), before, "nothing renamed or created");
    let conn = rusqlite::Connection::open(&foreign).unwrap();
    let tables: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 1, "no table added to a foreign database");
}

#[tokio::test]
async fn an_empty_file_becomes_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    std::fs::write(&path, b"").unwrap();
    let store = SqliteStore::open(&path).unwrap();
    store.store(vec![raw(1)]).await.unwrap();
    assert_eq!(store.stats().await.unwrap().pending, 1);
}

#[tokio::test]
async fn a_version_1_store_is_upgraded_with_its_events() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let events: Vec<RawEvent> = (1..=3).map(raw).collect();
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        occurred_on TEXT NOT NULL,
        attributes TEXT NOT NULL,
        stored_at TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        last_attempt_at TEXT,
        dead INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX IF NOT EXISTS events_by_state ON events (dead, seq); PRAGMA user_version = 1;",
        )
        .unwrap();
        for (i, e) in events.iter().enumerate() {
            conn.execute(
                "INSERT INTO events (id, name, occurred_on, attributes, stored_at, dead, attempts) VALUES (?1, ?2, ?3, ?4, ?3, ?5, ?5)",
                rusqlite::params![
                    e.id.as_str(),
                    e.name,
                    events_core::wire::format_time(e.occurred_on),
                    e.attributes,
                    i64::from(i == 0)
                ],
            )
            .unwrap();
        }
    }
    let store = SqliteStore::open(&path).unwrap();
    let pending = store.peek(10).await.unwrap();
    assert_eq!(
        pending.iter().map(|s| &s.event).collect::<Vec<_>>(),
        [&events[1], &events[2]]
    );
    let dead = store.dead_letters(10).await.unwrap();
    assert_eq!(
        (dead[0].event.clone(), dead[0].attempts),
        (events[0].clone(), 1)
    );
}

/// Flips one byte of a closed store's file header.
fn flip(path: &std::path::Path, at: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at] ^= 0x5a;
    std::fs::write(path, bytes).unwrap();
}

#[tokio::test]
async fn a_flipped_header_byte_never_leaves_an_empty_store_in_its_place() {
    // Bytes of the magic string, page size, format versions, payload
    // fractions, schema format and text encoding.
    for at in [0usize, 7, 16, 17, 18, 21, 44, 59] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.db");
        let events = filled(&path, 1000).await;
        flip(&path, at);
        let damaged = std::fs::read(&path).unwrap();
        for attempt in 0..2 {
            match SqliteStore::open(&path) {
                Ok(store) => {
                    let kept = store.peek(2000).await.unwrap();
                    assert_eq!(
                        kept.len(),
                        1000,
                        "byte {at}, open {attempt}: {:?}",
                        store.open_report()
                    );
                    assert!(kept.iter().zip(&events).all(|(k, e)| &k.event == e));
                }
                Err(e) => {
                    assert!(
                        matches!(e, StoreError::Damaged { .. } | StoreError::NotAStore { .. }),
                        "{e}"
                    );
                    assert_eq!(
                        std::fs::read(&path).unwrap(),
                        damaged,
                        "byte {at}: left in place"
                    );
                }
            }
        }
    }
}

/// The leaf page holding the `k`-th row's payload, overwritten with noise.
fn damage_page_of_row(path: &std::path::Path, id: &str) -> usize {
    let mut bytes = std::fs::read(path).unwrap();
    let page = 4096;
    // The event name appears only in the table's rows, not in its indexes.
    let needle = format!("{id}acme.shop");
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle.as_bytes())
        .expect("row found in the file");
    let start = at / page * page;
    for (i, b) in bytes[start..start + page].iter_mut().enumerate() {
        *b = (i * 7 + 13) as u8;
    }
    std::fs::write(path, bytes).unwrap();
    start / page
}

#[tokio::test]
async fn repair_walks_the_rows_present_and_reports_true_figures() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let events = filled(&path, 300).await;
    {
        // Sequence numbers spread up to 10 million.
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute("UPDATE events SET seq = seq * 33333", [])
            .unwrap();
        conn.execute("UPDATE sqlite_sequence SET seq = 300 * 33333", [])
            .unwrap();
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            .unwrap();
    }
    damage_page_of_row(&path, events[150].id.as_str());
    let store = SqliteStore::open_with(
        &path,
        SqliteOptions {
            check_integrity: true,
            ..options()
        },
    )
    .unwrap();
    let report = store.open_report().clone();
    assert!(report.damaged_file.is_some(), "{report:?}");
    assert!(report.rows_lost >= 1 && report.rows_lost < 30, "{report:?}");
    assert!(!report.rows_lost_is_lower_bound, "{report:?}");
    assert_eq!(report.rows_recovered + report.rows_lost, 300, "{report:?}");
    let kept = store.peek(1000).await.unwrap();
    assert_eq!(kept.len() as u64, report.rows_recovered);
    // New events go after every number ever used.
    store.store(vec![raw(9999)]).await.unwrap();
    let last = store.peek(1000).await.unwrap().pop().unwrap();
    assert!(last.seq > 300 * 33333, "{}", last.seq);
}

#[tokio::test]
async fn repair_refuses_while_another_process_has_the_store_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    filled(&path, 2000).await;
    let mut holder = std::process::Command::new(CHILD)
        .arg("hold")
        .arg(&path)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.stdout.take().unwrap()),
        &mut ready,
    )
    .unwrap();
    assert_eq!(ready.trim(), "ready");
    // Damage under the running process: a cut file.
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len * 3 / 4 + 100)
        .unwrap();
    let damaged = std::fs::read(&path).unwrap();
    let before = files_in(dir.path());
    let err = SqliteStore::open_with(
        &path,
        SqliteOptions {
            check_integrity: true,
            ..options()
        },
    )
    .map(|s| format!("opened: {:?}", s.open_report()))
    .unwrap_err_or_string();
    assert!(err.contains("another process"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), damaged, "left untouched");
    assert_eq!(files_in(dir.path()), before, "nothing renamed");
    // Once the other process is gone, the repair runs.
    drop(holder.stdin.take());
    holder.wait().unwrap();
    let store = SqliteStore::open_with(
        &path,
        SqliteOptions {
            check_integrity: true,
            ..options()
        },
    )
    .unwrap();
    assert!(
        store.open_report().damaged_file.is_some(),
        "{:?}",
        store.open_report()
    );
}

trait ErrText {
    fn unwrap_err_or_string(self) -> String;
}

impl ErrText for Result<String, StoreError> {
    fn unwrap_err_or_string(self) -> String {
        match self {
            Ok(s) => s,
            Err(e) => e.to_string(),
        }
    }
}

#[tokio::test]
async fn an_unreadable_row_becomes_a_dead_letter_and_the_rest_flows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let events = filled(&path, 10).await;
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        // A flipped byte in a time, and bytes that are not UTF-8.
        conn.execute(
            "UPDATE events SET occurred_on = replace(occurred_on, '-', 'x') WHERE id = ?1",
            [events[2].id.as_str()],
        )
        .unwrap();
        conn.execute(
            "UPDATE events SET attributes = CAST(X'7B22FF22' AS TEXT) WHERE id = ?1",
            [events[5].id.as_str()],
        )
        .unwrap();
    }
    let store = Arc::new(SqliteStore::open(&path).unwrap());
    let pending = store.peek(3).await.unwrap();
    assert_eq!(
        pending.iter().map(|s| n_of(&s.event)).collect::<Vec<_>>(),
        [1, 2, 4],
        "the bad row is skipped, the batch filled"
    );
    let unreadable = store.unreadable(10).await.unwrap();
    assert_eq!(unreadable.len(), 1);
    assert!(
        unreadable[0].reason.contains("occurred_on"),
        "{:?}",
        unreadable[0]
    );
    assert_eq!(unreadable[0].id, events[2].id.as_str());
    // Replay through the bus sends every readable event, in order.
    let remote = Arc::new(ScriptedRemote::default());
    let bus = EventBus::builder()
        .mode(Mode::EventBridge)
        .store(store.clone())
        .publisher(remote.clone())
        .discover(false)
        .build()
        .unwrap();
    while !bus.publish_from_failover(4).await.unwrap().sent.is_empty() {}
    assert_eq!(*remote.accepted.lock().unwrap(), [1, 2, 4, 5, 7, 8, 9, 10]);
    let unreadable = store.unreadable(10).await.unwrap();
    assert_eq!(unreadable.len(), 2);
    let raw_attributes = unreadable[1]
        .columns
        .iter()
        .find(|(name, _)| name == "attributes")
        .and_then(|(_, bytes)| bytes.clone());
    assert_eq!(
        raw_attributes,
        Some(vec![0x7b, 0x22, 0xff, 0x22]),
        "raw bytes kept"
    );
    let stats = store.stats().await.unwrap();
    assert_eq!((stats.pending, stats.unreadable), (0, 2));
    assert_eq!(store.purge_dead().await.unwrap(), 2);
}

#[tokio::test]
async fn consume_moves_past_an_unreadable_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let events = filled(&path, 4).await;
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute(
            "UPDATE events SET stored_at = 'garbage' WHERE id = ?1",
            [events[0].id.as_str()],
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    let taken = store.consume(2).await.unwrap();
    assert_eq!(
        taken.iter().map(|s| n_of(&s.event)).collect::<Vec<_>>(),
        [2, 3]
    );
    assert_eq!(store.stats().await.unwrap().unreadable, 1);
}

#[tokio::test]
async fn writers_wait_for_the_lock_while_another_process_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let store = SqliteStore::open(&path).unwrap();
    let mut writer = std::process::Command::new(CHILD)
        .arg("store")
        .arg(&path)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    let mut lines = std::io::BufReader::new(writer.stdout.take().unwrap());
    std::io::BufRead::read_line(&mut lines, &mut first).unwrap();
    assert!(!first.is_empty(), "the other process writes");
    let mut errors = Vec::new();
    for round in 0..100u64 {
        let mine = raw(round);
        if let Err(e) = store.store(vec![mine.clone()]).await {
            errors.push(format!("store: {e}"));
        }
        if let Err(e) = store
            .record_failure(mine.id.clone(), "no".into(), true)
            .await
        {
            errors.push(format!("record_failure: {e}"));
        }
        match store.requeue(mine.id.clone()).await {
            Ok(true) => {}
            other => errors.push(format!("requeue: {other:?}")),
        }
        if let Err(e) = store.consume(3).await {
            errors.push(format!("consume: {e}"));
        }
        if let Err(e) = store.claim(2).await {
            errors.push(format!("claim: {e}"));
        }
    }
    writer.kill().unwrap();
    writer.wait().unwrap();
    assert!(
        errors.is_empty(),
        "{} failures, first: {:?}",
        errors.len(),
        errors.first()
    );
}

#[tokio::test]
async fn a_claim_keeps_events_from_other_replayers_until_it_expires() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    filled(&path, 10).await;
    // The lease is measured by a clock the test moves forward: no claim
    // expires while the test runs, however slow the machine, until the
    // clock is moved past it.
    let lease = std::time::Duration::from_secs(60);
    let ahead_ms = Arc::new(std::sync::atomic::AtomicI64::new(0));
    let clock = {
        let ahead_ms = ahead_ms.clone();
        events_core::store::StoreClock::from_fn(move || {
            chrono::Utc::now()
                + chrono::Duration::milliseconds(ahead_ms.load(std::sync::atomic::Ordering::SeqCst))
        })
    };
    let a = SqliteStore::open_with(
        &path,
        SqliteOptions {
            claim_lease: lease,
            clock: clock.clone(),
            ..options()
        },
    )
    .unwrap();
    let b = SqliteStore::open_with(
        &path,
        SqliteOptions {
            claim_lease: lease,
            clock,
            ..options()
        },
    )
    .unwrap();
    let first = a.claim(4).await.unwrap();
    let second = b.claim(4).await.unwrap();
    assert_eq!(
        first.iter().map(|s| n_of(&s.event)).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    assert_eq!(
        second.iter().map(|s| n_of(&s.event)).collect::<Vec<_>>(),
        [5, 6, 7, 8]
    );
    assert_eq!(a.stats().await.unwrap().claimed, 8);
    // `a` sends 1 and 2; 3 fails (its claim is released); 4 is forgotten.
    a.ack(vec![first[0].event.id.clone(), first[1].event.id.clone()])
        .await
        .unwrap();
    a.record_failure(first[2].event.id.clone(), "throttled".into(), false)
        .await
        .unwrap();
    let third = b.claim(10).await.unwrap();
    assert_eq!(
        third.iter().map(|s| n_of(&s.event)).collect::<Vec<_>>(),
        [3, 9, 10]
    );
    assert!(
        b.consume(10).await.unwrap().is_empty(),
        "claimed events are not consumed"
    );
    assert_eq!(
        a.claim(10).await.unwrap(),
        [],
        "every pending event is claimed until the leases end"
    );
    ahead_ms.store(
        i64::try_from(lease.as_millis()).unwrap() + 1,
        std::sync::atomic::Ordering::SeqCst,
    );
    let back = a.claim(10).await.unwrap();
    assert_eq!(
        back.iter().map(|s| n_of(&s.event)).collect::<Vec<_>>(),
        [3, 4, 5, 6, 7, 8, 9, 10],
        "expired claims come back"
    );
}

#[test]
fn two_replayer_processes_share_the_work_and_send_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let sent_log = dir.path().join("sent.log");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let events = rt.block_on(filled(&path, 2000));
    for mode in ["claim", "replay"] {
        let _ = std::fs::remove_file(&sent_log);
        if mode == "replay" {
            let store = SqliteStore::open(&path).unwrap();
            rt.block_on(store.store(events.clone())).unwrap();
        }
        let children: Vec<_> = (0..2)
            .map(|_| {
                std::process::Command::new(CHILD)
                    .arg(mode)
                    .arg(&path)
                    .arg(&sent_log)
                    .arg("60000")
                    .stdout(std::process::Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for mut child in children {
            assert!(child.wait().unwrap().success());
        }
        let log = std::fs::read_to_string(&sent_log).unwrap();
        let mut by_id: HashMap<&str, Vec<&str>> = HashMap::new();
        for line in log.lines() {
            let (pid, id) = line.split_once(' ').unwrap();
            by_id.entry(id).or_default().push(pid);
        }
        let twice: Vec<_> = by_id.iter().filter(|(_, pids)| pids.len() > 1).collect();
        assert!(
            twice.is_empty(),
            "{mode}: {} sent twice, e.g. {:?}",
            twice.len(),
            twice.first()
        );
        assert_eq!(by_id.len(), 2000, "{mode}: every event sent");
        let senders: HashSet<&str> = by_id.values().flatten().copied().collect();
        assert_eq!(senders.len(), 2, "{mode}: both replayers took part");
    }
}

#[tokio::test]
async fn the_integrity_check_runs_only_after_an_unclean_close() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    filled(&path, 10).await;
    let store = SqliteStore::open(&path).unwrap();
    assert!(
        !store.open_report().integrity_checked,
        "clean close: no check"
    );
    drop(store);
    // A process killed with the store open.
    let mut child = std::process::Command::new(CHILD)
        .arg("hold")
        .arg(&path)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut ready,
    )
    .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let store = SqliteStore::open(&path).unwrap();
    assert!(
        store.open_report().integrity_checked,
        "after a kill: checked"
    );
    drop(store);
    let store = SqliteStore::open(&path).unwrap();
    assert!(!store.open_report().integrity_checked);
}

#[test]
fn a_deleted_log_is_reported_as_acknowledged_events_missing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let mut child = std::process::Command::new(CHILD)
        .arg("store")
        .arg(&path)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut acknowledged = 0;
    let mut line = String::new();
    while acknowledged < 200 {
        line.clear();
        std::io::BufRead::read_line(&mut lines, &mut line).unwrap();
        acknowledged += 1;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    std::fs::remove_file(dir.path().join("events.db-wal")).unwrap();
    let _ = std::fs::remove_file(dir.path().join("events.db-shm"));
    let store = SqliteStore::open(&path).unwrap();
    let report = store.open_report().clone();
    assert!(report.acknowledged_missing >= acknowledged, "{report:?}");
    assert!(!report.is_clean());
    let (from, to) = report.missing_seqs.unwrap();
    assert_eq!((to - from + 1) as u64, report.acknowledged_missing);
    eprintln!(
        "-wal deleted: {acknowledged} acknowledged (printed), {} reported missing, {} rows left",
        report.acknowledged_missing,
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(store.stats())
            .unwrap()
            .pending
    );
    drop(store);
    // Reported once; numbers are not reused.
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.open_report().acknowledged_missing, 0);
}

#[test]
fn error_messages_quote_a_bounded_prefix_of_a_bad_value() {
    let huge = format!("2026-{}", "9".repeat(5_000_000));
    let detail = format!(
        r#"{{"id":"e1","type":"acme.shop.1.event.order.placed","occurred_on":"{huge}","attributes":"{{}}"}}"#
    );
    let err = events_core::wire::decode_detail(&detail)
        .unwrap_err()
        .to_string();
    assert!(err.len() < 1000, "{} bytes", err.len());
    assert!(err.contains("5000005 bytes"), "{err}");
    let err = events_core::store::Retention::parse(&"x".repeat(100_000)).unwrap_err();
    assert!(err.len() < 1000);
}

#[cfg(unix)]
#[tokio::test]
async fn the_store_and_its_files_are_readable_by_the_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("state").join("bus");
    let path = folder.join("events.db");
    let store = SqliteStore::open(&path).unwrap();
    store.store(vec![raw(1)]).await.unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&folder), 0o700);
    assert_eq!(mode(&dir.path().join("state")), 0o700);
    for name in [
        "events.db",
        "events.db-wal",
        "events.db-shm",
        "events.db-lock",
        "events.db-state",
    ] {
        assert_eq!(mode(&folder.join(name)), 0o600, "{name}");
    }
    drop(store);
    // Salvage copies too.
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 100)
        .unwrap();
    let store = SqliteStore::open_with(
        &path,
        SqliteOptions {
            check_integrity: true,
            ..options()
        },
    )
    .unwrap();
    let damaged = store.open_report().damaged_file.clone().expect("repaired");
    assert_eq!(mode(&damaged), 0o600);
    assert_eq!(mode(&path), 0o600);
}

#[tokio::test]
async fn handled_events_are_a_journal_kept_within_the_retention() {
    let dir = tempfile::tempdir().unwrap();
    let retention = events_core::store::Retention {
        max_events: Some(300),
        max_age: None,
    };
    let sqlite: Arc<dyn EventStore> = Arc::new(
        SqliteStore::open_with(
            dir.path().join("events.db"),
            SqliteOptions {
                retention,
                ..options()
            },
        )
        .unwrap(),
    );
    let memory: Arc<dyn EventStore> = Arc::new(MemoryStore::with_retention(retention));
    for store in [sqlite, memory] {
        let mut newest = Vec::new();
        for round in 0..50u64 {
            let batch: Vec<RawEvent> = (0..100).map(|i| raw(round * 100 + i)).collect();
            store.store(batch.clone()).await.unwrap();
            let ids: Vec<EventId> = batch.iter().map(|e| e.id.clone()).collect();
            assert_eq!(store.mark_handled(ids).await.unwrap(), 100);
            let stats = store.stats().await.unwrap();
            assert_eq!(stats.pending, 0, "handled events are not waiting");
            assert!(stats.handled <= 300, "round {round}: {stats:?}");
            newest = batch;
        }
        let journal = store.handled(1000).await.unwrap();
        assert_eq!(journal.len(), 300);
        assert_eq!(journal[0].event, newest[99], "newest first");
        assert!(store.peek(10).await.unwrap().is_empty());
    }
}

#[test]
fn retention_from_the_environment_syntax() {
    use events_core::store::Retention;
    use std::time::Duration;
    assert_eq!(Retention::parse("10000").unwrap().max_events, Some(10000));
    assert_eq!(
        Retention::parse("7d").unwrap().max_age,
        Some(Duration::from_secs(7 * 86400))
    );
    assert_eq!(
        Retention::parse("unlimited").unwrap(),
        Retention {
            max_events: None,
            max_age: None
        }
    );
    let err = Retention::parse("lots").unwrap_err();
    assert!(
        err.starts_with("EVENT_BUS_STORE_RETENTION=`lots` is not valid: expected "),
        "worded like the other variables: {err}"
    );
}

#[tokio::test]
async fn store_dead_writes_dead_letters_in_one_step() {
    for (kind, store, _dir) in stores() {
        let events: Vec<RawEvent> = (1..=2).map(raw).collect();
        store
            .store_dead(events.clone(), "ValidationException: too large".into())
            .await
            .unwrap();
        let dead = store.dead_letters(10).await.unwrap();
        assert_eq!(dead.len(), 2, "{kind}");
        assert_eq!(dead[0].attempts, 1, "{kind}");
        assert!(dead[0].last_attempt_at.is_some(), "{kind}");
        assert_eq!(
            dead[0].last_error.as_deref(),
            Some("ValidationException: too large")
        );
        assert_eq!(store.stats().await.unwrap().pending, 0, "{kind}");
    }
}

#[tokio::test]
async fn a_full_real_store_in_eventbridge_mode_reports_the_refused_events_not_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        SqliteStore::open_with(
            dir.path().join("events.db"),
            SqliteOptions {
                max_size_bytes: Some(64 * 1024),
                ..options()
            },
        )
        .unwrap(),
    );
    let remote = Arc::new(ScriptedRemote {
        down_for: u32::MAX,
        ..ScriptedRemote::default()
    });
    let bus = EventBus::builder()
        .mode(Mode::EventBridge)
        .store(store.clone())
        .publisher(remote)
        .discover(false)
        .build()
        .unwrap();
    let mut failed_over = 0u64;
    let err = loop {
        match bus
            .publish(OrderPlaced {
                n: failed_over,
                note: "z".repeat(2000),
            })
            .await
        {
            Ok(outcome) => {
                assert!(matches!(
                    outcome.delivery(),
                    events_core::Delivery::FailedOver { .. }
                ));
                failed_over += 1;
            }
            Err(e) => break e,
        }
        assert!(failed_over < 1000, "the limit never hit");
    };
    let text = err.to_string();
    assert!(
        matches!(&err, BusError::NotDelivered { failed, .. } if failed.len() == 1),
        "{text}"
    );
    assert!(text.contains("full"), "{text}");
    assert_eq!(
        store.stats().await.unwrap().pending,
        failed_over,
        "every failed-over event kept"
    );
}

#[events_core::handler]
async fn count_order(_event: &OrderPlaced) {}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_mode_keeps_handled_events_as_a_bounded_journal() {
    for async_handlers in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.db");
        let bus = EventBus::builder()
            .store_path(&path)
            .store_options(SqliteOptions {
                retention: events_core::store::Retention {
                    max_events: Some(500),
                    max_age: None,
                },
                ..options()
            })
            .async_handlers(async_handlers)
            .build()
            .unwrap();
        assert!(!bus.handlers_of(OrderPlaced::EVENT_NAME).is_empty());
        for round in 0..30u64 {
            let batch: Vec<Event<OrderPlaced>> = (0..100)
                .map(|i| {
                    Event::new(OrderPlaced {
                        n: round * 100 + i,
                        note: String::new(),
                    })
                })
                .collect();
            bus.publish_batch(batch).await.unwrap();
            bus.shutdown(std::time::Duration::from_secs(10))
                .await
                .unwrap();
            let stats = bus.store().unwrap().stats().await.unwrap();
            assert_eq!(
                stats.pending, 0,
                "async={async_handlers}: handled events are not waiting"
            );
            assert!(
                stats.handled <= 500,
                "async={async_handlers}, round {round}: {stats:?}"
            );
        }
        let stats = bus.store().unwrap().stats().await.unwrap();
        assert_eq!(stats.handled, 500, "async={async_handlers}");
        let newest = bus.store().unwrap().handled(1).await.unwrap();
        assert_eq!(n_of(&newest[0].event), 2999);
    }
}

// --------------------------------- every accepted time round-trips (item 5)

fn time_text() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    let zone = prop_oneof![
        Just(String::new()),
        Just("Z".to_owned()),
        (any::<bool>(), 0u32..24, 0u32..60)
            .prop_map(|(plus, h, m)| format!("{}{h:02}:{m:02}", if plus { '+' } else { '-' })),
    ];
    let fraction = prop_oneof![
        Just(String::new()),
        (1usize..10, any::<u64>()).prop_map(|(digits, n)| {
            let text = format!("{:09}", n % 1_000_000_000);
            format!(".{}", &text[..digits])
        }),
    ];
    (
        0u32..10_000,
        1u32..13,
        1u32..32,
        0u32..24,
        0u32..60,
        0u32..61,
        fraction,
        zone,
        any::<bool>(),
    )
        .prop_map(|(y, mo, d, h, mi, s, frac, zone, t)| {
            format!(
                "{y:04}-{mo:02}-{d:02}{}{h:02}:{mi:02}:{s:02}{frac}{zone}",
                if t { 'T' } else { ' ' }
            )
        })
}

fn round_trip(times: &[chrono::DateTime<chrono::Utc>]) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let events: Vec<RawEvent> = times
        .iter()
        .map(|t| RawEvent {
            occurred_on: *t,
            ..raw(0)
        })
        .collect();
    {
        let store = SqliteStore::open(&path).unwrap();
        rt.block_on(store.store(events.clone())).unwrap();
    }
    // Read back by a fresh open, as a restart would.
    let store = SqliteStore::open(&path).unwrap();
    let back = rt.block_on(store.peek(usize::MAX)).unwrap();
    assert_eq!(back.len(), events.len());
    for (b, e) in back.iter().zip(&events) {
        assert_eq!(b.event.occurred_on, e.occurred_on);
    }
    assert_eq!(rt.block_on(store.stats()).unwrap().unreadable, 0);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(32))]

    /// Every time the wire reader accepts is written by the store and read
    /// back exactly.
    #[test]
    fn every_time_the_wire_reader_accepts_round_trips_through_the_store(
        texts in proptest::collection::vec(time_text(), 64)
    ) {
        let accepted: Vec<_> = texts
            .iter()
            .filter_map(|t| events_core::wire::parse_time(t).ok())
            .collect();
        round_trip(&accepted);
    }

    /// So does every time a caller can put in a `RawEvent`.
    #[test]
    fn every_time_chrono_holds_round_trips_through_the_store(
        instants in proptest::collection::vec((-8_210_298_412_800i64..8_210_266_876_799, 0u32..2_000_000_000), 64)
    ) {
        let times: Vec<_> = instants
            .iter()
            .filter_map(|(s, n)| chrono::DateTime::from_timestamp(*s, *n))
            .collect();
        round_trip(&times);
    }
}

#[test]
fn the_reader_refuses_times_it_could_not_write_back() {
    for text in ["9999-12-31T23:59:59-01:00", "0000-01-01T00:00:00+01:00"] {
        let err = events_core::wire::parse_time(text).unwrap_err();
        assert!(err.contains("outside") && err.contains(text), "{err}");
    }
    let edges = [
        "0001-01-01T00:00:00+00:00",
        "9999-12-31T23:59:59.999999999Z",
        "2016-12-31T23:59:60.5Z",
        "2026-11-26 10:15:30.123456789",
    ];
    let times: Vec<_> = edges
        .iter()
        .map(|t| events_core::wire::parse_time(t).unwrap())
        .collect();
    round_trip(&times);
}
