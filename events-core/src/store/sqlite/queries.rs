//! The `EventStore` operations of the SQLite store, each a query or a transaction on the writer thread.

use rusqlite::params;
use rusqlite::types::{Value, ValueRef};
use tokio::sync::oneshot;

use super::rows::{select, select_in};
use super::writer::Request;
use super::SqliteStore;
use crate::envelope::{now, EventId, RawEvent};
use crate::publisher::BoxFuture;
use crate::store::error::StoreError;
use crate::store::event::{EventState, StoreStats, StoredEvent, UnreadableRow};
use crate::store::event_store::EventStore;
use crate::store::schema::{COLUMNS, COLUMN_NAMES, STATE_DEAD, STATE_HANDLED, STATE_PENDING};
use crate::store::time::{parse_store_time, store_time};

fn limit(max: usize) -> Value {
    Value::Integer(i64::try_from(max).unwrap_or(i64::MAX))
}

const FREE_PENDING: &str =
    "WHERE state = 0 AND (claim_until IS NULL OR claim_until <= ?1) ORDER BY seq LIMIT ?2";

impl EventStore for SqliteStore {
    fn store(&self, events: Vec<RawEvent>) -> BoxFuture<'_, Result<(), StoreError>> {
        if self.read_only {
            return Box::pin(async { Err(StoreError::ReadOnly) });
        }
        let (reply, rx) = oneshot::channel();
        let sent = self.send(Request::Store {
            events,
            dead: None,
            reply,
        });
        Box::pin(async move {
            sent?;
            rx.await.unwrap_or(Err(StoreError::Closed))
        })
    }

    fn store_dead(
        &self,
        events: Vec<RawEvent>,
        error: String,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        if self.read_only {
            return Box::pin(async { Err(StoreError::ReadOnly) });
        }
        let (reply, rx) = oneshot::channel();
        let sent = self.send(Request::Store {
            events,
            dead: Some(error),
            reply,
        });
        Box::pin(async move {
            sent?;
            rx.await.unwrap_or(Err(StoreError::Closed))
        })
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
            let until =
                now.saturating_add(i64::try_from(ctx.lease.as_millis()).unwrap_or(i64::MAX));
            let owner = ctx.owner.clone();
            // A claim needs no fsync: if it is lost, so is its holder.
            ctx.relaxed(|ctx| {
                let tx = ctx.immediate()?;
                let events = select_in(&tx, FREE_PENDING, &[Value::Integer(now), limit(max)])?;
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
                "SELECT {COLUMNS}, reason, found_at FROM unreadable ORDER BY seq LIMIT ?1"
            ))?;
            let mut rows = stmt.query([limit(max)])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                let mut columns = Vec::with_capacity(10);
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
                let found_at: String = row.get(11)?;
                out.push(UnreadableRow {
                    seq: row.get(0)?,
                    id,
                    columns,
                    reason: row.get(10)?,
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
