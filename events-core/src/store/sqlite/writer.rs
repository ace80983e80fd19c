//! The writer thread: one connection, every waiting request in one transaction (group commit).

use std::sync::mpsc;
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, TransactionBehavior};
use tokio::sync::oneshot;

use crate::envelope::{now, EventId, RawEvent};
use crate::store::clock::StoreClock;
use crate::store::error::{is_corruption, StoreError};
use crate::store::presence::StateWriter;
use crate::store::retention::Retention;
use crate::store::schema::{STATE_DEAD, STATE_HANDLED, STATE_PENDING};
use crate::store::time::store_time;

pub(super) type Job = Box<dyn FnOnce(&mut Ctx) + Send>;

pub(super) type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

pub(super) enum Request {
    Store {
        events: Vec<RawEvent>,
        dead: Option<String>,
        /// Stored by a local-mode bus (see `EventStore::store_local`).
        local: bool,
        reply: Reply<()>,
    },
    Handled(Vec<EventId>, Reply<usize>),
    Job(Job),
}

/// Most requests one group commit takes.
const MAX_GROUP: usize = 4096;

/// The writer thread's state.
pub(super) struct Ctx {
    pub(super) conn: Connection,
    pub(super) read_only: bool,
    pub(super) lease: Duration,
    /// What claims are measured by.
    pub(super) clock: StoreClock,
    /// Local-mode events up to this sequence number were left pending by
    /// an earlier run (0: none, or the store was not opened alone).
    pub(super) unfinished_up_to: i64,
    /// The `events` table has the `local` column (a read-only look at a
    /// store no build of this version has written may lack it).
    pub(super) local_column: bool,
    /// The `events` table has the `trace` column (the same: a writer adds
    /// it on open).
    pub(super) trace_column: bool,
    pub(super) retention: Retention,
    /// This store's claim token.
    pub(super) owner: String,
    /// Handled rows (local mode's journal).
    pub(super) handled: u64,
    pub(super) last_age_prune: Option<Instant>,
    pub(super) state: Option<StateWriter>,
    pub(super) hwm: i64,
    pub(super) saw_corruption: bool,
    /// Why `synchronous` could not be set back to FULL after a relaxed
    /// step; while set, every write is refused (see [`Ctx::durable`]).
    pub(super) not_durable: Option<String>,
}

impl Ctx {
    pub(super) fn immediate(&mut self) -> rusqlite::Result<rusqlite::Transaction<'_>> {
        self.conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
    }

    /// Runs `step` with `synchronous = NORMAL` (a step whose loss loses no
    /// event: a claim, a handled mark), then sets FULL again and checks it
    /// took. A store that cannot get back to FULL remembers why and refuses
    /// writes until it can ([`Ctx::durable`]).
    pub(super) fn relaxed<R>(&mut self, step: impl FnOnce(&mut Ctx) -> R) -> R {
        if let Err(e) = self.conn.pragma_update(None, "synchronous", "NORMAL") {
            // Still FULL: slower, never less durable.
            tracing::debug!(error = %e, "cannot relax synchronous; the step runs with FULL");
        }
        let result = step(self);
        if let Err(reason) = set_full(&self.conn) {
            tracing::error!(%reason, "the event store cannot set synchronous back to FULL; it refuses writes until it can");
            self.not_durable = Some(reason);
        }
        result
    }

    /// `Ok` when the connection writes with `synchronous = FULL`; after a
    /// failed return to FULL, tries again, and fails with
    /// [`StoreError::NotDurable`] while it still cannot.
    pub(super) fn durable(&mut self) -> Result<(), StoreError> {
        let Some(reason) = self.not_durable.take() else {
            return Ok(());
        };
        match set_full(&self.conn) {
            Ok(()) => {
                tracing::info!(earlier = %reason, "the event store writes with synchronous = FULL again");
                Ok(())
            }
            Err(reason) => {
                self.not_durable = Some(reason.clone());
                Err(StoreError::NotDurable { reason })
            }
        }
    }

    pub(super) fn raise_hwm(&mut self, seq: i64) {
        if seq > self.hwm {
            self.hwm = seq;
            if let Some(state) = &self.state {
                state.record(seq);
            }
        }
    }
}

/// Sets `synchronous = FULL` and reads it back: `Err` says why it is not.
pub(super) fn set_full(conn: &Connection) -> Result<(), String> {
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(|e| e.to_string())?;
    let level: i64 = conn
        .query_row("PRAGMA synchronous", [], |r| r.get(0))
        .map_err(|e| e.to_string())?;
    // 2 is FULL, 3 EXTRA (stricter still).
    if level >= 2 {
        Ok(())
    } else {
        Err(format!(
            "`PRAGMA synchronous` reads {level} after setting FULL (2)"
        ))
    }
}

/// Returns whether SQLite reported corruption while the store was open.
pub(super) fn writer_loop(mut ctx: Ctx, receiver: mpsc::Receiver<Request>) -> bool {
    while let Ok(first) = receiver.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_GROUP {
            match receiver.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let mut group = Group::default();
        for request in batch {
            match request {
                Request::Store {
                    events,
                    dead,
                    local,
                    reply,
                } => group.stores.push((events, dead, local, reply)),
                Request::Handled(ids, reply) => group.handled.push((ids, reply)),
                Request::Job(job) => {
                    // Keep order: writes sent before this job commit first.
                    commit_group(&mut ctx, std::mem::take(&mut group));
                    job(&mut ctx);
                }
            }
        }
        commit_group(&mut ctx, group);
    }
    ctx.saw_corruption
}

pub(super) type StoreRequest = (Vec<RawEvent>, Option<String>, bool, Reply<()>);

#[derive(Default)]
pub(super) struct Group {
    stores: Vec<StoreRequest>,
    handled: Vec<(Vec<EventId>, Reply<usize>)>,
}

/// Writes every waiting request in one transaction (one fsync).
fn commit_group(ctx: &mut Ctx, group: Group) {
    if group.stores.is_empty() && group.handled.is_empty() {
        return;
    }
    if ctx.read_only {
        for (_, _, _, reply) in group.stores {
            let _ = reply.send(Err(StoreError::ReadOnly));
        }
        for (_, reply) in group.handled {
            let _ = reply.send(Err(StoreError::ReadOnly));
        }
        return;
    }
    if let Err(e) = ctx.durable() {
        let reason = match &e {
            StoreError::NotDurable { reason } => reason.clone(),
            other => other.to_string(),
        };
        let refused = || StoreError::NotDurable {
            reason: reason.clone(),
        };
        for (_, _, _, reply) in group.stores {
            let _ = reply.send(Err(refused()));
        }
        for (_, reply) in group.handled {
            let _ = reply.send(Err(refused()));
        }
        return;
    }
    // Marks alone need no fsync of their own: a lost mark leaves an event
    // pending, never loses one; the next store's fsync makes them durable.
    let result = if group.stores.is_empty() {
        ctx.relaxed(|ctx| write_group(ctx, &group))
    } else {
        write_group(ctx, &group)
    };
    match result {
        Ok((last_seq, counts)) => {
            if let Some(seq) = last_seq {
                ctx.raise_hwm(seq);
            }
            for (_, _, _, reply) in group.stores {
                let _ = reply.send(Ok(()));
            }
            for ((_, reply), n) in group.handled.into_iter().zip(counts) {
                let _ = reply.send(Ok(n));
            }
        }
        Err(group_error) if group.stores.len() + group.handled.len() > 1 => {
            ctx.saw_corruption |= is_corruption(&group_error);
            // One bad request must not fail its neighbours: retry each alone.
            tracing::warn!(error = %group_error, requests = group.stores.len() + group.handled.len(), "group commit failed; retrying requests one by one");
            for store in group.stores {
                commit_group(
                    ctx,
                    Group {
                        stores: vec![store],
                        handled: Vec::new(),
                    },
                );
            }
            for handled in group.handled {
                commit_group(
                    ctx,
                    Group {
                        stores: Vec::new(),
                        handled: vec![handled],
                    },
                );
            }
        }
        Err(e) => {
            ctx.saw_corruption |= is_corruption(&e);
            for (_, _, _, reply) in group.stores {
                let _ = reply.send(Err(StoreError::Sqlite(clone_error(&e))));
            }
            for (_, reply) in group.handled {
                let _ = reply.send(Err(StoreError::Sqlite(clone_error(&e))));
            }
        }
    }
}

fn write_group(ctx: &mut Ctx, group: &Group) -> rusqlite::Result<(Option<i64>, Vec<usize>)> {
    let retention = ctx.retention;
    let mut handled = ctx.handled;
    let prune_age = retention.max_age.filter(|_| {
        !group.handled.is_empty()
            && ctx
                .last_age_prune
                .is_none_or(|t| t.elapsed() >= Duration::from_secs(60))
    });
    let tx = ctx.immediate()?;
    let mut last_seq = None;
    let mut counts = Vec::with_capacity(group.handled.len());
    {
        let stored_at = store_time(now());
        let mut insert = tx.prepare_cached(
            "INSERT OR IGNORE INTO events (id, name, occurred_on, attributes, stored_at, state, attempts, last_error, last_attempt_at, local, trace)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?;
        for (events, dead, local, _) in &group.stores {
            for e in events {
                let inserted = insert.execute(params![
                    e.id.as_str(),
                    e.name,
                    store_time(e.occurred_on),
                    e.attributes,
                    stored_at,
                    if dead.is_some() {
                        STATE_DEAD
                    } else {
                        STATE_PENDING
                    },
                    i64::from(dead.is_some()),
                    dead,
                    dead.as_ref().map(|_| stored_at.clone()),
                    local,
                    e.trace.as_ref().map(|t| t.to_json()),
                ])?;
                if inserted > 0 {
                    last_seq = Some(tx.last_insert_rowid());
                }
            }
        }
        let mut mark = tx.prepare_cached(
            "UPDATE events SET state = ?2, claim_owner = NULL, claim_until = NULL WHERE id = ?1 AND state = ?3",
        )?;
        for (ids, _) in &group.handled {
            let mut n = 0;
            for id in ids {
                n += mark.execute(params![id.as_str(), STATE_HANDLED, STATE_PENDING])?;
            }
            handled += n as u64;
            counts.push(n);
        }
    }
    if let Some(max) = retention.max_events {
        if handled > max {
            let excess = i64::try_from(handled - max).unwrap_or(i64::MAX);
            let removed = tx.execute(
                "DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE state = ?1 ORDER BY seq LIMIT ?2)",
                params![STATE_HANDLED, excess],
            )?;
            handled -= removed as u64;
        }
    }
    if let Some(age) = prune_age {
        let cutoff = chrono::Duration::from_std(age)
            .ok()
            .and_then(|age| now().checked_sub_signed(age));
        if let Some(cutoff) = cutoff {
            let removed = tx.execute(
                "DELETE FROM events WHERE state = ?1 AND stored_at < ?2",
                params![STATE_HANDLED, store_time(cutoff)],
            )?;
            handled = handled.saturating_sub(removed as u64);
        }
    }
    tx.commit()?;
    ctx.handled = handled;
    if prune_age.is_some() {
        ctx.last_age_prune = Some(Instant::now());
    }
    Ok((last_seq, counts))
}

fn clone_error(e: &rusqlite::Error) -> rusqlite::Error {
    match e {
        rusqlite::Error::SqliteFailure(code, msg) => {
            rusqlite::Error::SqliteFailure(*code, msg.clone())
        }
        other => rusqlite::Error::ToSqlConversionFailure(other.to_string().into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::schema::create_schema;

    fn ctx() -> (tempfile::TempDir, Ctx) {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("events.db")).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        set_full(&conn).unwrap();
        create_schema(&conn).unwrap();
        let ctx = Ctx {
            conn,
            read_only: false,
            lease: Duration::from_secs(60),
            clock: StoreClock::system(),
            unfinished_up_to: 0,
            local_column: true,
            trace_column: true,
            retention: Retention::default(),
            owner: "test".to_owned(),
            handled: 0,
            last_age_prune: None,
            state: None,
            hwm: 0,
            saw_corruption: false,
            not_durable: None,
        };
        (dir, ctx)
    }

    fn event(id: &str) -> RawEvent {
        RawEvent {
            id: EventId::from(id),
            name: "acme.shop.v1.order.placed".to_owned(),
            occurred_on: now(),
            attributes: "{}".to_owned(),
            trace: None,
        }
    }

    fn store(ctx: &mut Ctx, id: &str) -> Result<(), StoreError> {
        let (reply, mut rx) = oneshot::channel();
        let mut group = Group::default();
        group.stores.push((vec![event(id)], None, false, reply));
        commit_group(ctx, group);
        rx.try_recv().unwrap()
    }

    fn rows(ctx: &Ctx) -> i64 {
        ctx.conn
            .query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn set_full_reads_the_level_back_and_says_why_it_did_not_take() {
        let (_dir, ctx) = ctx();
        assert_eq!(set_full(&ctx.conn), Ok(()));
        // SQLite refuses to change the safety level inside a transaction.
        ctx.conn.execute_batch("BEGIN").unwrap();
        let reason = set_full(&ctx.conn).unwrap_err();
        assert!(reason.contains("transaction"), "{reason}");
    }

    #[test]
    fn a_store_that_cannot_get_back_to_full_refuses_writes_until_it_can() {
        let (_dir, mut ctx) = ctx();
        store(&mut ctx, "a").unwrap();
        // A relaxed step that leaves the connection unable to return to FULL.
        ctx.relaxed(|ctx| ctx.conn.execute_batch("BEGIN").unwrap());
        assert!(ctx.not_durable.is_some());
        let refused = store(&mut ctx, "b").unwrap_err();
        assert!(
            matches!(&refused, StoreError::NotDurable { reason } if reason.contains("transaction")),
            "{refused}"
        );
        assert!(
            refused.to_string().contains("synchronous = FULL"),
            "{refused}"
        );
        assert_eq!(rows(&ctx), 1, "nothing was written");
        // Once FULL can be set again, writes resume, durably.
        ctx.conn.execute_batch("COMMIT").unwrap();
        store(&mut ctx, "b").unwrap();
        assert_eq!(rows(&ctx), 2);
        assert!(ctx.not_durable.is_none());
        let level: i64 = ctx
            .conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(level, 2);
    }

    #[test]
    fn marks_alone_run_relaxed_and_leave_the_store_at_full() {
        let (_dir, mut ctx) = ctx();
        store(&mut ctx, "a").unwrap();
        let (reply, mut rx) = oneshot::channel();
        let mut group = Group::default();
        group.handled.push((vec![EventId::from("a")], reply));
        commit_group(&mut ctx, group);
        assert_eq!(rx.try_recv().unwrap().unwrap(), 1);
        assert_eq!(ctx.handled, 1);
        let level: i64 = ctx
            .conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(level, 2, "back at FULL after the relaxed step");
        assert!(ctx.not_durable.is_none());
    }
}
