//! The `EventStore` operations of the SQLite store, each a query or a transaction on the writer thread.

use rusqlite::params;
use rusqlite::types::{Value, ValueRef};
use tokio::sync::oneshot;

use super::rows::{select, select_in};
use super::writer::{Ctx, Request};
use super::SqliteStore;
use crate::envelope::{now, EventId, RawEvent};
use crate::publisher::BoxFuture;
use crate::store::error::StoreError;
use crate::store::event::{EventState, StoreStats, StoredEvent, UnreadableRow};
use crate::store::event_store::EventStore;
use crate::store::schema::{columns, COLUMN_NAMES, STATE_DEAD, STATE_HANDLED, STATE_PENDING};
use crate::store::time::{parse_store_time, store_time};

fn limit(max: usize) -> Value {
    Value::Integer(i64::try_from(max).unwrap_or(i64::MAX))
}

/// Pending events for a remote bus that no live claim holds (local-mode
/// events are never sent to one).
const FREE_PENDING: &str =
    "WHERE state = 0 AND local = 0 AND (claim_until IS NULL OR claim_until <= ?1) \
     ORDER BY seq LIMIT ?2";

/// Local-mode events an earlier run left pending (`?3`: up to which
/// sequence number) that this store has not claimed yet. The store was
/// opened alone, so any other claim on them is a dead process's.
const UNFINISHED_LOCAL: &str = "WHERE state = 0 AND local = 1 AND seq <= ?3 \
     AND (claim_owner IS NULL OR claim_owner != ?4 OR claim_until <= ?1) ORDER BY seq LIMIT ?2";

/// Claims, for the store's lease, the events `filter` selects (`?1` is now
/// in milliseconds, `?2` the most to take).
fn claim_where(
    ctx: &mut Ctx,
    filter: &'static str,
    args: Vec<Value>,
) -> Result<Vec<StoredEvent>, StoreError> {
    let now = ctx.clock.now_ms();
    let until = now.saturating_add(i64::try_from(ctx.lease.as_millis()).unwrap_or(i64::MAX));
    let owner = ctx.owner.clone();
    // A claim needs no fsync: if it is lost, so is its holder.
    ctx.relaxed(|ctx| {
        let tx = ctx.immediate()?;
        let events = select_in(&tx, filter, &args)?;
        {
            let mut update = tx.prepare_cached(
                "UPDATE events SET claim_owner = ?2, claim_until = ?3 WHERE seq = ?1",
            )?;
            for e in &events {
                update.execute(params![e.seq, owner, until])?;
            }
        }
        tx.commit()?;
        Ok(events)
    })
}

impl SqliteStore {
    /// Sends events to the writer thread to be stored: pending (`dead`
    /// `None`) or as dead letters with that error; `local`: as local-mode
    /// events.
    fn store_request(
        &self,
        events: Vec<RawEvent>,
        dead: Option<String>,
        local: bool,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        if self.read_only {
            return Box::pin(async { Err(StoreError::ReadOnly) });
        }
        let (reply, rx) = oneshot::channel();
        let sent = self.send(Request::Store {
            events,
            dead,
            local,
            reply,
        });
        Box::pin(async move {
            sent?;
            rx.await.unwrap_or(Err(StoreError::Closed))
        })
    }
}

impl EventStore for SqliteStore {
    fn store(&self, events: Vec<RawEvent>) -> BoxFuture<'_, Result<(), StoreError>> {
        self.store_request(events, None, false)
    }

    fn store_dead(
        &self,
        events: Vec<RawEvent>,
        error: String,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        self.store_request(events, Some(error), false)
    }

    fn mark_handled(&self, ids: Vec<EventId>) -> BoxFuture<'_, Result<usize, StoreError>> {
        if self.read_only {
            return Box::pin(async { Err(StoreError::ReadOnly) });
        }
        let (reply, rx) = oneshot::channel();
        let sent = self.send(Request::Handled(ids, reply));
        Box::pin(async move {
            sent?;
            rx.await.unwrap_or(Err(StoreError::Closed))
        })
    }

    fn peek(&self, max: usize) -> BoxFuture<'_, Result<Vec<StoredEvent>, StoreError>> {
        self.job(move |ctx| {
            select(
                ctx,
                "WHERE state = ?1 ORDER BY seq LIMIT ?2",
                &[Value::Integer(STATE_PENDING), limit(max)],
            )
        })
    }

    fn claim(&self, max: usize) -> BoxFuture<'_, Result<Vec<StoredEvent>, StoreError>> {
        self.write_job(move |ctx| {
            let now = ctx.clock.now_ms();
            claim_where(ctx, FREE_PENDING, vec![Value::Integer(now), limit(max)])
        })
    }

    fn store_local(&self, events: Vec<RawEvent>) -> BoxFuture<'_, Result<(), StoreError>> {
        self.store_request(events, None, true)
    }

    fn claim_unfinished_local(
        &self,
        max: usize,
    ) -> BoxFuture<'_, Result<Vec<StoredEvent>, StoreError>> {
        self.write_job(move |ctx| {
            if ctx.unfinished_up_to == 0 {
                return Ok(Vec::new());
            }
            let now = ctx.clock.now_ms();
            let args = vec![
                Value::Integer(now),
                limit(max),
                Value::Integer(ctx.unfinished_up_to),
                Value::Text(ctx.owner.clone()),
            ];
            claim_where(ctx, UNFINISHED_LOCAL, args)
        })
    }

    fn unfinished_local_at_open(&self) -> u64 {
        self.open_report().unfinished_local
    }

    fn local_pending(&self) -> BoxFuture<'_, Result<u64, StoreError>> {
        self.job(|ctx| {
            if !ctx.local_column {
                return Ok(0);
            }
            let n: i64 = ctx.conn.query_row(
                "SELECT COUNT(*) FROM events WHERE state = ?1 AND local = 1",
                [STATE_PENDING],
                |r| r.get(0),
            )?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }

    fn ack(&self, ids: Vec<EventId>) -> BoxFuture<'_, Result<usize, StoreError>> {
        self.write_job(move |ctx| {
            let tx = ctx.immediate()?;
            let mut removed = 0;
            {
                let mut delete = tx.prepare_cached("DELETE FROM events WHERE id = ?1")?;
                for id in &ids {
                    removed += delete.execute([id.as_str()])?;
                }
            }
            tx.commit()?;
            Ok(removed)
        })
    }

    fn consume(&self, max: usize) -> BoxFuture<'_, Result<Vec<StoredEvent>, StoreError>> {
        self.write_job(move |ctx| {
            let now = ctx.clock.now_ms();
            let tx = ctx.immediate()?;
            let events = select_in(
                &tx,
                "WHERE state IN (0, 2) AND (claim_until IS NULL OR claim_until <= ?1) ORDER BY seq LIMIT ?2",
                &[Value::Integer(now), limit(max)],
            )?;
            {
                let mut delete = tx.prepare_cached("DELETE FROM events WHERE seq = ?1")?;
                for e in &events {
                    delete.execute([e.seq])?;
                }
            }
            tx.commit()?;
            let handled = events
                .iter()
                .filter(|e| e.state == EventState::Handled)
                .count() as u64;
            ctx.handled = ctx.handled.saturating_sub(handled);
            Ok(events)
        })
    }

    fn record_failure(
        &self,
        id: EventId,
        error: String,
        dead: bool,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        self.write_job(move |ctx| {
            let tx = ctx.immediate()?;
            tx.execute(
                "UPDATE events SET attempts = attempts + 1, last_error = ?2, last_attempt_at = ?3,
                    state = CASE WHEN ?4 THEN ?5 ELSE state END, claim_owner = NULL, claim_until = NULL
                 WHERE id = ?1 AND state != ?6",
                params![
                    id.as_str(),
                    error,
                    store_time(now()),
                    dead,
                    STATE_DEAD,
                    STATE_HANDLED
                ],
            )?;
            tx.commit()?;
            Ok(())
        })
    }

    fn get(&self, id: EventId) -> BoxFuture<'_, Result<Option<StoredEvent>, StoreError>> {
        self.job(move |ctx| {
            Ok(select(ctx, "WHERE id = ?1", &[Value::Text(id.as_str().to_owned())])?.pop())
        })
    }

    fn dead_letters(&self, max: usize) -> BoxFuture<'_, Result<Vec<StoredEvent>, StoreError>> {
        self.job(move |ctx| {
            select(
                ctx,
                "WHERE state = ?1 ORDER BY seq LIMIT ?2",
                &[Value::Integer(STATE_DEAD), limit(max)],
            )
        })
    }

    fn handled(&self, max: usize) -> BoxFuture<'_, Result<Vec<StoredEvent>, StoreError>> {
        self.job(move |ctx| {
            select(
                ctx,
                "WHERE state = ?1 ORDER BY seq DESC LIMIT ?2",
                &[Value::Integer(STATE_HANDLED), limit(max)],
            )
        })
    }

    fn unreadable(&self, max: usize) -> BoxFuture<'_, Result<Vec<UnreadableRow>, StoreError>> {
        self.job(move |ctx| {
            let mut stmt = ctx.conn.prepare_cached(&format!(
                "SELECT {}, reason, found_at FROM unreadable ORDER BY seq LIMIT ?1",
                columns(ctx.trace_column)
            ))?;
            let mut rows = stmt.query([limit(max)])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                let mut columns = Vec::with_capacity(COLUMN_NAMES.len());
                for (i, name) in COLUMN_NAMES.iter().enumerate() {
                    let bytes = match row.get_ref(i)? {
                        ValueRef::Null => None,
                        ValueRef::Integer(n) => Some(n.to_string().into_bytes()),
                        ValueRef::Real(x) => Some(x.to_string().into_bytes()),
                        ValueRef::Text(b) | ValueRef::Blob(b) => Some(b.to_vec()),
                    };
                    columns.push(((*name).to_owned(), bytes));
                }
                let id = columns[1]
                    .1
                    .as_deref()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_default();
                let n = COLUMN_NAMES.len();
                let found_at: String = row.get(n + 1)?;
                out.push(UnreadableRow {
                    seq: row.get(0)?,
                    id,
                    columns,
                    reason: row.get(n)?,
                    found_at: parse_store_time(&found_at).unwrap_or_else(|_| now()),
                });
            }
            Ok(out)
        })
    }

    fn requeue(&self, id: EventId) -> BoxFuture<'_, Result<bool, StoreError>> {
        self.write_job(move |ctx| {
            // Moved to the end of the queue (a new seq), attempts reset; the
            // last error and its time stay as history.
            let tx = ctx.immediate()?;
            let dead: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM events WHERE id = ?1 AND state = ?2)",
                params![id.as_str(), STATE_DEAD],
                |r| r.get(0),
            )?;
            if !dead {
                return Ok(false);
            }
            let next: i64 = tx.query_row(
                "SELECT MAX(COALESCE((SELECT MAX(seq) FROM events), 0),
                            COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0)) + 1",
                [],
                |r| r.get(0),
            )?;
            tx.execute(
                "UPDATE events SET seq = ?2, state = ?3, attempts = 0, claim_owner = NULL, claim_until = NULL WHERE id = ?1",
                params![id.as_str(), next, STATE_PENDING],
            )?;
            tx.execute(
                "UPDATE sqlite_sequence SET seq = ?1 WHERE name = 'events'",
                [next],
            )?;
            tx.commit()?;
            ctx.raise_hwm(next);
            Ok(true)
        })
    }

    fn purge_dead(&self) -> BoxFuture<'_, Result<usize, StoreError>> {
        self.write_job(|ctx| {
            let tx = ctx.immediate()?;
            let n = tx.execute("DELETE FROM events WHERE state = ?1", [STATE_DEAD])?
                + tx.execute("DELETE FROM unreadable", [])?;
            tx.commit()?;
            Ok(n)
        })
    }

    fn stats(&self) -> BoxFuture<'_, Result<StoreStats, StoreError>> {
        self.job(|ctx| {
            let count = |n: i64| u64::try_from(n).unwrap_or(0);
            let (pending, dead, handled, claimed): (i64, i64, i64, i64) = ctx.conn.query_row(
                "SELECT COALESCE(SUM(state = 0), 0), COALESCE(SUM(state = 1), 0), COALESCE(SUM(state = 2), 0),
                        COALESCE(SUM(state = 0 AND claim_until > ?1), 0)
                 FROM events",
                [ctx.clock.now_ms()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )?;
            let unreadable: i64 =
                ctx.conn
                    .query_row("SELECT COUNT(*) FROM unreadable", [], |r| r.get(0))?;
            Ok(StoreStats {
                pending: count(pending),
                dead: count(dead),
                handled: count(handled),
                unreadable: count(unreadable),
                claimed: count(claimed),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(n: u32) -> RawEvent {
        RawEvent {
            id: EventId::from(format!("e{n}")),
            name: "acme.shop.v1.order.placed".to_owned(),
            occurred_on: now(),
            attributes: format!("{{\"n\":{n}}}"),
            trace: None,
        }
    }

    fn ids(events: &[StoredEvent]) -> Vec<String> {
        events.iter().map(|e| e.event.id.to_string()).collect()
    }

    #[tokio::test]
    async fn local_mode_events_are_never_claimed_for_a_remote_bus() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("events.db")).unwrap();
        store.store_local(vec![raw(1), raw(2)]).await.unwrap();
        store.store(vec![raw(3)]).await.unwrap();
        assert_eq!(ids(&store.claim(10).await.unwrap()), ["e3"]);
        assert_eq!(store.local_pending().await.unwrap(), 2);
        assert_eq!(store.stats().await.unwrap().pending, 3);
        // Inspection still shows every pending event.
        assert_eq!(ids(&store.peek(10).await.unwrap()), ["e1", "e2", "e3"]);
        // Nothing is unfinished in the run that stored them.
        assert_eq!(store.unfinished_local_at_open(), 0);
        assert!(store.claim_unfinished_local(10).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn the_next_run_alone_claims_what_an_earlier_run_left_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.db");
        {
            let store = SqliteStore::open(&path).unwrap();
            store
                .store_local(vec![raw(1), raw(2), raw(3)])
                .await
                .unwrap();
            store.mark_handled(vec![EventId::from("e2")]).await.unwrap();
            // An event for a remote bus is none of local mode's business.
            store.store(vec![raw(4)]).await.unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.unfinished_local_at_open(), 2);
        assert_eq!(store.open_report().unfinished_local, 2);
        // Another process opening now (not alone) finds none of them.
        let other = SqliteStore::open(&path).unwrap();
        assert_eq!(other.unfinished_local_at_open(), 0);
        assert!(other.claim_unfinished_local(10).await.unwrap().is_empty());
        // Events stored after the open are this run's own.
        store.store_local(vec![raw(5)]).await.unwrap();
        let first = store.claim_unfinished_local(1).await.unwrap();
        let rest = store.claim_unfinished_local(10).await.unwrap();
        assert_eq!(ids(&first), ["e1"]);
        assert_eq!(ids(&rest), ["e3"], "each once");
        assert!(store.claim_unfinished_local(10).await.unwrap().is_empty());
        assert_eq!(ids(&store.claim(10).await.unwrap()), ["e4"]);
    }

    #[tokio::test]
    async fn a_store_written_before_the_local_mark_gains_it_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.db");
        drop(SqliteStore::open(&path).unwrap());
        {
            let conn = rusqlite::Connection::open(&path).unwrap();
            conn.execute_batch("ALTER TABLE events DROP COLUMN local")
                .unwrap();
            assert!(!crate::store::schema::has_local_column(&conn).unwrap());
        }
        let read_only = SqliteStore::open_read_only(&path).unwrap();
        assert_eq!(read_only.local_pending().await.unwrap(), 0);
        drop(read_only);
        let store = SqliteStore::open(&path).unwrap();
        store.store_local(vec![raw(1)]).await.unwrap();
        assert_eq!(store.local_pending().await.unwrap(), 1);
    }
}
