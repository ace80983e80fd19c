//! Writing: in the caller's transaction or not at all, the wire detail, one
//! row per event, writers of one aggregate in commit order, the migration.

use std::time::Duration;

use events_core::{wire, RawEvent, Recorder};
use events_outbox::{OutboxError, Relay};
use sqlx::Row;

use crate::support::{self, tick, Sightings};

/// Done-when 1: a rolled-back save leaves no row and nothing is ever
/// published; a committed one is published exactly once, with its id and
/// time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolled_back_save_publishes_nothing_and_a_committed_one_exactly_once() {
    let (_db, pool) = support::database(4).await;
    sqlx::query("CREATE TABLE companies (id text PRIMARY KEY, name text NOT NULL)")
        .execute(&pool)
        .await
        .unwrap();
    let sightings = Sightings::default();
    let relay = Relay::spawn(pool.clone(), sightings.bus(0), support::quick());

    // Rolled back: the company and its event are gone together.
    let mut events = Recorder::new();
    events.record_event(tick("acme", 0));
    let lost = events.events()[0].id().to_string();
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("INSERT INTO companies VALUES ('acme', 'Acme')")
        .execute(&mut *tx)
        .await
        .unwrap();
    assert_eq!(
        events_outbox::write_recorded(&mut tx, "acme", &mut events)
            .await
            .unwrap(),
        1
    );
    assert!(events.is_empty(), "the recorder is drained into the outbox");
    tx.rollback().await.unwrap();
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM events_outbox.messages")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 0);

    // Committed: published once, with its identity.
    let event = tick("globex", 0);
    let mut events = Recorder::new();
    events.record_event(event.clone());
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("INSERT INTO companies VALUES ('globex', 'Globex')")
        .execute(&mut *tx)
        .await
        .unwrap();
    events_outbox::write_recorded(&mut tx, "globex", &mut events)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    support::until("the committed event", || {
        let s = sightings.clone();
        async move { s.count() >= 1 }
    })
    .await;
    // A second round finds nothing more to hand over.
    support::until("the row marked published", || {
        let pool = pool.clone();
        async move { events_outbox::stats(&pool).await.unwrap().published == 1 }
    })
    .await;
    relay.stop().await.unwrap();
    let seen = sightings.all();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].event, event);
    assert_eq!(seen[0].event.id(), event.id());
    assert_eq!(seen[0].event.occurred_on(), event.occurred_on());
    assert!(!sightings.ids().contains(&lost));
    let stats = events_outbox::stats(&pool).await.unwrap();
    assert_eq!(
        (stats.pending, stats.dead_letters, stats.published),
        (0, 0, 1)
    );
    assert_eq!(stats.lag, None);
    let companies: Vec<String> = sqlx::query_scalar("SELECT id FROM companies")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(companies, ["globex"]);
}

/// The row holds the event's identity, its key and the SPEC §4 detail byte
/// for byte; events of one write keep their order.
#[tokio::test]
async fn the_row_holds_the_identity_the_key_and_the_wire_detail() {
    let (_db, pool) = support::database(2).await;
    let events = vec![tick("acme", 0), tick("acme", 1)];
    support::commit(&pool, Some("acme"), events.clone()).await;
    let rows = sqlx::query(
        "SELECT id, name, occurred_on, aggregate_key, detail FROM events_outbox.messages ORDER BY seq",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 2);
    for (row, event) in rows.iter().zip(&events) {
        let raw = RawEvent::from_event(event).unwrap();
        assert_eq!(row.get::<String, _>("id"), event.id().as_str());
        assert_eq!(row.get::<String, _>("name"), raw.name);
        assert_eq!(
            row.get::<chrono::DateTime<chrono::Utc>, _>("occurred_on"),
            event.occurred_on()
        );
        assert_eq!(
            row.get::<Option<String>, _>("aggregate_key").as_deref(),
            Some("acme")
        );
        assert_eq!(row.get::<String, _>("detail"), wire::encode_detail(&raw));
    }
}

/// One event id, one row: writing it again is refused with its id, and
/// nothing of the second write stays.
#[tokio::test]
async fn an_event_is_recorded_once() {
    let (_db, pool) = support::database(2).await;
    let event = tick("acme", 0);
    support::commit(&pool, Some("acme"), vec![event.clone()]).await;
    let mut tx = pool.begin().await.unwrap();
    let err = events_outbox::write(&mut tx, Some("acme"), vec![tick("acme", 1), event.clone()])
        .await
        .unwrap_err();
    match err {
        OutboxError::DuplicateEvent { id } => assert_eq!(id, event.id().as_str()),
        other => panic!("expected DuplicateEvent, got {other:?}"),
    }
    drop(tx);
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM events_outbox.messages")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 1);
}

/// The trap of sequences: `seq` is taken at insert, not at commit. Two
/// writers of one aggregate take turns until commit, so the later commit
/// always has the later `seq`; writers of another aggregate do not wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_of_one_aggregate_take_turns_until_commit() {
    let (_db, pool) = support::database(6).await;
    let first = tick("acme", 0);
    let mut tx1 = pool.begin().await.unwrap();
    events_outbox::write(&mut tx1, Some("acme"), vec![first.clone()])
        .await
        .unwrap();

    // Another aggregate writes and commits while tx1 is open.
    tokio::time::timeout(
        Duration::from_secs(30),
        support::commit(&pool, Some("globex"), vec![tick("globex", 0)]),
    )
    .await
    .expect("a writer of another aggregate does not wait");

    // A second writer of the same aggregate waits for tx1's commit.
    let second = tick("acme", 1);
    let writer = tokio::spawn({
        let pool = pool.clone();
        let second = second.clone();
        async move { support::commit(&pool, Some("acme"), vec![second]).await }
    });
    support::until("the second writer waiting on the aggregate's lock", || {
        let pool = pool.clone();
        async move {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND wait_event_type = 'Lock' AND wait_event = 'advisory'",
            )
            .fetch_one(&pool)
            .await
            .unwrap();
            waiting == 1
        }
    })
    .await;
    assert!(!writer.is_finished());
    tx1.commit().await.unwrap();
    writer.await.unwrap();

    let order: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM events_outbox.messages WHERE aggregate_key = 'acme' ORDER BY seq",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(order, [first.id().to_string(), second.id().to_string()]);
}

/// The migration: idempotent, safe from many processes at once, in its own
/// schema with its own version table (none of sqlx's `_sqlx_migrations`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_migration_is_idempotent_concurrent_and_keeps_its_own_versions() {
    let db = tokio::task::spawn_blocking(|| events_pg_tests::shared().database())
        .await
        .unwrap();
    let pool = support::pool(&db.url, 8).await;
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move { events_outbox::migrate(&pool).await })
        })
        .collect();
    for run in runs {
        run.await.unwrap().unwrap();
    }
    events_outbox::migrate(&pool).await.unwrap();
    let versions: Vec<i32> =
        sqlx::query_scalar("SELECT version FROM events_outbox.schema_version ORDER BY version")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        versions,
        (1..=events_outbox::SCHEMA_VERSION).collect::<Vec<_>>()
    );
    let sqlx_table: Option<String> =
        sqlx::query_scalar("SELECT to_regclass('public._sqlx_migrations')::text")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(sqlx_table, None);
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT indexname::text FROM pg_indexes WHERE schemaname = 'events_outbox' ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    for index in [
        "messages_dead",
        "messages_id_unique",
        "messages_pending",
        "messages_pending_aggregate",
        "messages_published",
    ] {
        assert!(
            indexes.iter().any(|i| i == index),
            "{index} missing from {indexes:?}"
        );
    }

    // A database migrated by a newer events-outbox is refused, untouched.
    sqlx::query(
        "INSERT INTO events_outbox.schema_version (version, description) VALUES (99, 'future')",
    )
    .execute(&pool)
    .await
    .unwrap();
    match events_outbox::migrate(&pool).await {
        Err(OutboxError::SchemaTooNew { found: 99, known }) => {
            assert_eq!(known, events_outbox::SCHEMA_VERSION)
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
}

/// A database migrated by the first release (schema version 1, whose
/// `messages_pending` the claim's aggregate probe could walk) is upgraded:
/// its index is rebuilt with the `available_at` clause, its rows kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_upgrades_a_version_1_database() {
    let (_db, pool) = support::database(4).await;
    // Back to what version 1 left: its index, its version row, a pending row.
    sqlx::raw_sql(
        "DROP INDEX events_outbox.messages_pending;
         CREATE INDEX messages_pending ON events_outbox.messages (seq)
             WHERE published_at IS NULL AND dead_at IS NULL;
         DELETE FROM events_outbox.schema_version WHERE version > 1;
         INSERT INTO events_outbox.messages (id, name, occurred_on, aggregate_key, detail)
             VALUES ('e-1', 'testclean.outbox.1.event.tick.counted', now(), 'agg', '{}');",
    )
    .execute(&pool)
    .await
    .unwrap();
    events_outbox::migrate(&pool).await.unwrap();
    let definition: String = sqlx::query_scalar(
        "SELECT indexdef FROM pg_indexes
         WHERE schemaname = 'events_outbox' AND indexname = 'messages_pending'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(
        definition.contains("available_at IS NOT NULL"),
        "{definition}"
    );
    let versions: Vec<i32> =
        sqlx::query_scalar("SELECT version FROM events_outbox.schema_version ORDER BY version")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(versions, [1, 2]);
    let stats = events_outbox::stats(&pool).await.unwrap();
    assert_eq!(stats.pending, 1);
}

/// A service migrates at every start: once the tables exist, a migration
/// logs nothing at info or above (no "already exists, skipping" NOTICE of
/// PostgreSQL's, relayed by sqlx), and leaves the connection's own message
/// level as it was.
#[tokio::test]
async fn a_migration_with_nothing_to_do_is_silent() {
    let db = tokio::task::spawn_blocking(|| events_pg_tests::shared().database())
        .await
        .unwrap();
    let pool = support::pool(&db.url, 1).await;
    events_outbox::migrate(&pool).await.unwrap();

    let lines = support::Lines::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .with_writer(lines.clone())
        .finish();
    {
        let _guard = tracing::subscriber::set_default(subscriber);
        events_outbox::migrate(&pool).await.unwrap();
        // The check can fail: an info line is seen here.
        tracing::info!(target: "probe", "seen");
    }
    let logged = lines.text();
    assert!(logged.contains("seen"), "{logged}");
    // (Not "one line": sqlx warns of a statement slower than 1 s, which a
    // loaded machine may see.)
    assert!(!logged.contains("sqlx::postgres::notice"), "{logged}");
    assert!(!logged.contains("already exists"), "{logged}");

    let level: String = sqlx::query_scalar("SHOW client_min_messages")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(level, "notice");
}
