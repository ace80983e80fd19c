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
    // Everything acknowledged before is still there.
    assert_eq!(bus.store().unwrap().stats().await.unwrap().pending, stored);
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
            .map(|s| (s.event.id.to_string(), s.attempts, s.is_dead(), s.last_error))
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
