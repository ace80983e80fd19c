//! The SQLite store keeps each event's trace context: stored, claimed, failed over, dead-lettered and requeued, and across an upgrade of a store written before the column existed.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failed test

use events_core::store::EventStore;
use events_core::trace::TraceContext;
use events_core::{EventId, RawEvent, SqliteStore};

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn context() -> TraceContext {
    TraceContext::parse(TRACEPARENT, Some("congo=t61rcWkgMzE")).unwrap()
}

fn raw(id: &str, trace: Option<TraceContext>) -> RawEvent {
    RawEvent {
        id: EventId::from(id),
        name: "acme.shop.v1.order.placed".to_owned(),
        occurred_on: events_core::chrono::Utc::now(),
        attributes: "{\"total\":1}".to_owned(),
        trace,
    }
}

fn traces(events: &[events_core::store::StoredEvent]) -> Vec<(String, Option<TraceContext>)> {
    events
        .iter()
        .map(|e| (e.event.id.to_string(), e.event.trace.clone()))
        .collect()
}

#[tokio::test]
async fn an_event_stored_with_a_trace_context_is_read_claimed_and_requeued_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    {
        let store = SqliteStore::open(&path).unwrap();
        store
            .store(vec![raw("a", Some(context())), raw("b", None)])
            .await
            .unwrap();
        store
            .store_dead(vec![raw("d", Some(context()))], "refused".to_owned())
            .await
            .unwrap();
    }
    // A new process: what it reads back is what was stored.
    let store = SqliteStore::open(&path).unwrap();
    let expected = vec![("a".to_owned(), Some(context())), ("b".to_owned(), None)];
    assert_eq!(traces(&store.peek(10).await.unwrap()), expected);
    assert_eq!(
        store
            .get(EventId::from("a"))
            .await
            .unwrap()
            .unwrap()
            .event
            .trace,
        Some(context())
    );
    let claimed = store.claim(10).await.unwrap();
    assert_eq!(traces(&claimed), expected);
    // A failed attempt keeps it; so does a dead letter and its requeue.
    store
        .record_failure(EventId::from("a"), "down".to_owned(), false)
        .await
        .unwrap();
    assert_eq!(
        traces(&store.dead_letters(10).await.unwrap()),
        [("d".to_owned(), Some(context()))]
    );
    assert!(store.requeue(EventId::from("d")).await.unwrap());
    // `b` is still claimed; `a` was let go by its failure.
    let again = store.claim(10).await.unwrap();
    assert_eq!(
        traces(&again),
        [
            ("a".to_owned(), Some(context())),
            ("d".to_owned(), Some(context())),
        ]
    );
    assert_eq!(
        again[1].event.trace.as_ref().unwrap().tracestate(),
        Some("congo=t61rcWkgMzE")
    );
}

#[tokio::test]
async fn a_store_written_before_the_trace_column_opens_reads_and_gains_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    {
        let store = SqliteStore::open(&path).unwrap();
        store.store(vec![raw("old", None)]).await.unwrap();
    }
    // What an earlier build of schema version 2 wrote: no `trace` column.
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "ALTER TABLE events DROP COLUMN trace; ALTER TABLE unreadable DROP COLUMN trace;",
        )
        .unwrap();
    }
    let column = |path: &std::path::Path| -> i64 {
        rusqlite::Connection::open(path)
            .unwrap()
            .query_row(
                "SELECT COUNT(*) FROM pragma_table_info('events') WHERE name = 'trace'",
                [],
                |r| r.get(0),
            )
            .unwrap()
    };
    assert_eq!(column(&path), 0);

    // Read-only, it is read as it is, changed in nothing.
    {
        let read_only = SqliteStore::open_read_only(&path).unwrap();
        assert_eq!(
            traces(&read_only.peek(10).await.unwrap()),
            [("old".to_owned(), None)]
        );
        assert!(read_only.unreadable(10).await.unwrap().is_empty());
        assert!(read_only.check().await.unwrap().unreadable.is_empty());
    }
    assert_eq!(column(&path), 0, "a read-only open adds nothing");

    // A writer adds the column; old events keep having no context.
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(column(&path), 1);
    store
        .store(vec![raw("new", Some(context()))])
        .await
        .unwrap();
    assert_eq!(
        traces(&store.claim(10).await.unwrap()),
        [
            ("old".to_owned(), None),
            ("new".to_owned(), Some(context()))
        ]
    );
}
