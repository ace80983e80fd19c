//! The failover store: where events wait, durably, until a remote bus takes
//! them (SPEC §7). In local mode it is where published events are kept.
//!
//! [`SqliteStore`] is the embedded default: one SQLite file in WAL mode with
//! `synchronous = FULL`, so an event whose `store` returned survives a process
//! kill or power loss. Writes go to one dedicated thread that commits every
//! request waiting at that moment in one transaction (group commit): many
//! tasks storing at once share an fsync instead of queueing for one each.
//! [`MemoryStore`] has the same behaviour without durability, for tests.
//!
//! ```
//! use events_core::store::{EventStore, SqliteStore};
//! use events_core::{DomainEvent, Event, RawEvent};
//! # #[derive(DomainEvent, Debug, Clone)]
//! # #[event(company = "acme", service = "shop", version = 1, resource = "order", action = "placed")]
//! # struct OrderPlaced { total: u64 }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let store = SqliteStore::open(dir.path().join("events.db"))?;
//! let raw = RawEvent::from_event(&Event::new(OrderPlaced { total: 10 }))?;
//! store.store(vec![raw.clone()]).await?;
//! let oldest = store.peek(10).await?;
//! assert_eq!(oldest[0].event, raw);
//! store.ack(vec![raw.id.clone()]).await?;
//! assert_eq!(store.stats().await?.pending, 0);
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Mutex};

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use tokio::sync::oneshot;

use crate::envelope::{now, EventId, RawEvent};
use crate::publisher::BoxFuture;
use crate::wire::{format_time, parse_time};

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: i64 = 1;

/// An event in the store, with its delivery history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// The event, byte for byte as stored.
    pub event: RawEvent,
    /// Its position: events are replayed in increasing `seq`.
    pub seq: i64,
    /// When it was stored.
    pub stored_at: DateTime<Utc>,
    /// Failed delivery attempts so far.
    pub attempts: u32,
    /// The last delivery error.
    pub last_error: Option<String>,
    /// When delivery was last tried.
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// Whether it is a dead letter (kept, never replayed until requeued).
    pub dead: bool,
}

/// Counts of what the store holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreStats {
    /// Events waiting to be delivered.
    pub pending: u64,
    /// Dead letters.
    pub dead: u64,
}

/// A store operation failed; the events it concerned were not stored or
/// changed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store could not be opened or created.
    #[error("cannot open the event store at `{path}`: {source}")]
    Open {
        /// The store's path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The file was written by a newer version of this library.
    #[error(
        "the event store at `{path}` has schema version {found}, newer than the {supported} this build reads; \
         upgrade events-core or point EVENT_BUS_STORE_PATH elsewhere"
    )]
    NewerSchema {
        /// The store's path.
        path: PathBuf,
        /// The version in the file.
        found: i64,
        /// The version this build supports.
        supported: i64,
    },
    /// SQLite reported an error (disk full, read-only file, I/O error).
    #[error("event store error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored row could not be read back.
    #[error("event store row {seq} is unreadable: {reason}")]
    Corrupt {
        /// The row.
        seq: i64,
        /// What is wrong with it.
        reason: String,
    },
    /// The store's writer thread is gone (the store was closed).
    #[error("the event store is closed")]
    Closed,
}

/// Durable storage of events waiting for delivery.
///
/// Every method is atomic: on `Err` nothing changed. Ids are unique: storing
/// an id that is already present (pending or dead) is a no-op, so a retried
/// `store` never duplicates an event.
pub trait EventStore: Send + Sync + 'static {
    /// Stores events; returns once they are durable.
    fn store(&self, events: Vec<RawEvent>) -> BoxFuture<'_, Result<(), StoreError>>;
    /// The oldest `max` pending events, without removing them.
    fn peek(&self, max: usize) -> BoxFuture<'_, Result<Vec<StoredEvent>, StoreError>>;
    /// Removes delivered events; returns how many were removed.
    fn ack(&self, ids: Vec<EventId>) -> BoxFuture<'_, Result<usize, StoreError>>;
    /// Takes the oldest `max` pending events out of the store (the seed's
    /// `consume`): they are gone once this returns.
    fn consume(&self, max: usize) -> BoxFuture<'_, Result<Vec<StoredEvent>, StoreError>>;
    /// Records a failed delivery: one more attempt, the error and its time;
    /// `dead` turns the event into a dead letter.
    fn record_failure(
        &self,
        id: EventId,
        error: String,
        dead: bool,
    ) -> BoxFuture<'_, Result<(), StoreError>>;
    /// One event by id, pending or dead.
    fn get(&self, id: EventId) -> BoxFuture<'_, Result<Option<StoredEvent>, StoreError>>;
    /// The oldest `max` dead letters.
    fn dead_letters(&self, max: usize) -> BoxFuture<'_, Result<Vec<StoredEvent>, StoreError>>;
    /// Moves a dead letter back to the end of the pending queue, attempts
    /// reset; `false` if no dead letter has this id.
    fn requeue(&self, id: EventId) -> BoxFuture<'_, Result<bool, StoreError>>;
    /// Deletes every dead letter; returns how many.
    fn purge_dead(&self) -> BoxFuture<'_, Result<usize, StoreError>>;
    /// Counts.
    fn stats(&self) -> BoxFuture<'_, Result<StoreStats, StoreError>>;
}

// ---------------------------------------------------------------- memory

/// An in-memory store with the same semantics as [`SqliteStore`], for tests.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<MemoryState>,
}

#[derive(Debug, Default)]
struct MemoryState {
    next_seq: i64,
    rows: BTreeMap<i64, StoredEvent>,
}

impl MemoryState {
    fn seq_of(&self, id: &EventId) -> Option<i64> {
        self.rows
            .values()
            .find(|r| &r.event.id == id)
            .map(|r| r.seq)
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore::default()
    }

    fn with<R>(&self, f: impl FnOnce(&mut MemoryState) -> R) -> R {
        // A panic while holding the lock cannot leave the map half-changed
        // (every closure below is a single insert/remove), so a poisoned lock
        // is still consistent.
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }
}

fn ready<'a, T: Send + 'a>(value: T) -> BoxFuture<'a, T> {
    Box::pin(std::future::ready(value))
}

impl EventStore for MemoryStore {
    fn store(&self, events: Vec<RawEvent>) -> BoxFuture<'_, Result<(), StoreError>> {
        ready(self.with(|s| {
            for event in events {
                if s.seq_of(&event.id).is_some() {
                    continue;
                }
                s.next_seq += 1;
                let seq = s.next_seq;
                s.rows.insert(
                    seq,
                    StoredEvent {
                        event,
                        seq,
                        stored_at: now(),
                        attempts: 0,
                        last_error: None,
                        last_attempt_at: None,
                        dead: false,
                    },
                );
            }
            Ok(())
        }))
    }

    fn peek(&self, max: usize) -> BoxFuture<'_, Result<Vec<StoredEvent>, StoreError>> {
        ready(Ok(self.with(|s| {
            s.rows
                .values()
                .filter(|r| !r.dead)
                .take(max)
                .cloned()
                .collect()
        })))
    }

    fn ack(&self, ids: Vec<EventId>) -> BoxFuture<'_, Result<usize, StoreError>> {
        ready(Ok(self.with(|s| {
            let before = s.rows.len();
            s.rows.retain(|_, r| !ids.contains(&r.event.id));
            before - s.rows.len()
        })))
    }

    fn consume(&self, max: usize) -> BoxFuture<'_, Result<Vec<StoredEvent>, StoreError>> {
        ready(Ok(self.with(|s| {
            let seqs: Vec<i64> = s
                .rows
                .values()
                .filter(|r| !r.dead)
                .take(max)
                .map(|r| r.seq)
                .collect();
            seqs.iter().filter_map(|seq| s.rows.remove(seq)).collect()
        })))
    }

    fn record_failure(
        &self,
        id: EventId,
        error: String,
        dead: bool,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        self.with(|s| {
            if let Some(row) = s.seq_of(&id).and_then(|seq| s.rows.get_mut(&seq)) {
                row.attempts += 1;
                row.last_error = Some(error);
                row.last_attempt_at = Some(now());
                row.dead |= dead;
            }
        });
        ready(Ok(()))
    }

    fn get(&self, id: EventId) -> BoxFuture<'_, Result<Option<StoredEvent>, StoreError>> {
        ready(Ok(self.with(|s| {
            s.seq_of(&id).and_then(|seq| s.rows.get(&seq).cloned())
        })))
    }

    fn dead_letters(&self, max: usize) -> BoxFuture<'_, Result<Vec<StoredEvent>, StoreError>> {
        ready(Ok(self.with(|s| {
            s.rows
                .values()
                .filter(|r| r.dead)
                .take(max)
                .cloned()
                .collect()
        })))
    }

    fn requeue(&self, id: EventId) -> BoxFuture<'_, Result<bool, StoreError>> {
        ready(Ok(self.with(|s| {
            let Some(seq) = s
                .seq_of(&id)
                .filter(|seq| s.rows.get(seq).is_some_and(|r| r.dead))
            else {
                return false;
            };
            let Some(mut row) = s.rows.remove(&seq) else {
                return false;
            };
            s.next_seq += 1;
            row.seq = s.next_seq;
            row.dead = false;
            row.attempts = 0;
            s.rows.insert(row.seq, row);
            true
        })))
    }

    fn purge_dead(&self) -> BoxFuture<'_, Result<usize, StoreError>> {
        ready(Ok(self.with(|s| {
            let before = s.rows.len();
            s.rows.retain(|_, r| !r.dead);
            before - s.rows.len()
        })))
    }

    fn stats(&self) -> BoxFuture<'_, Result<StoreStats, StoreError>> {
        ready(Ok(self.with(|s| {
            let dead = s.rows.values().filter(|r| r.dead).count() as u64;
            StoreStats {
                pending: s.rows.len() as u64 - dead,
                dead,
            }
        })))
    }
}

// ---------------------------------------------------------------- sqlite

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

type Reply = oneshot::Sender<Result<(), StoreError>>;

enum Request {
    Store(Vec<RawEvent>, Reply),
    Job(Job),
}

/// The embedded durable store on SQLite (see the module docs).
pub struct SqliteStore {
    path: PathBuf,
    sender: Mutex<Option<mpsc::Sender<Request>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Most requests one group commit takes.
const MAX_GROUP: usize = 4096;

fn open_error(path: &Path, source: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Open {
        path: path.to_owned(),
        source: Box::new(source),
    }
}

impl SqliteStore {
    /// Opens (creating it and its folder if needed) the store at `path`.
    ///
    /// Fails with a clear error when the path cannot be written or the file
    /// has a newer schema. Opening checks that the store can be written, so
    /// a read-only location is reported here, at start-up.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_owned();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| open_error(&path, e))?;
        }
        let conn = Self::connect(&path)?;
        let (sender, receiver) = mpsc::channel();
        let writer = std::thread::Builder::new()
            .name("events-store".to_owned())
            .spawn(move || writer_loop(conn, receiver))
            .map_err(|e| open_error(&path, e))?;
        tracing::debug!(path = %path.display(), "event store opened");
        Ok(SqliteStore {
            path,
            sender: Mutex::new(Some(sender)),
            writer: Mutex::new(Some(writer)),
        })
    }

    fn connect(path: &Path) -> Result<Connection, StoreError> {
        let conn = Connection::open(path).map_err(|e| open_error(path, e))?;
        let setup = || -> rusqlite::Result<i64> {
            conn.busy_timeout(std::time::Duration::from_secs(5))?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "FULL")?;
            conn.query_row("PRAGMA user_version", [], |r| r.get(0))
        };
        let version = setup().map_err(|e| open_error(path, e))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema {
                path: path.to_owned(),
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        // Creating the schema (or, on an existing file, a no-op write) also
        // proves the location is writable.
        conn.execute_batch(&format!(
            "BEGIN IMMEDIATE;
             CREATE TABLE IF NOT EXISTS events (
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
             CREATE INDEX IF NOT EXISTS events_by_state ON events (dead, seq);
             PRAGMA user_version = {SCHEMA_VERSION};
             COMMIT;"
        ))
        .map_err(|e| open_error(path, e))?;
        Ok(conn)
    }

    /// The store's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn send(&self, request: Request) -> Result<(), StoreError> {
        let guard = self.sender.lock().unwrap_or_else(|p| p.into_inner());
        match guard.as_ref() {
            Some(sender) => sender.send(request).map_err(|_| StoreError::Closed),
            None => Err(StoreError::Closed),
        }
    }

    fn job<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<R, StoreError> + Send + 'static,
    ) -> BoxFuture<'_, Result<R, StoreError>> {
        let (tx, rx) = oneshot::channel();
        let sent = self.send(Request::Job(Box::new(move |conn| {
            let _ = tx.send(f(conn));
        })));
        Box::pin(async move {
            sent?;
            rx.await.unwrap_or(Err(StoreError::Closed))
        })
    }

    /// Stops the writer thread after the requests already sent; later calls
    /// fail with [`StoreError::Closed`].
    pub fn close(&self) {
        self.sender.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(writer) = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = writer.join();
        }
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.close();
    }
}

fn writer_loop(mut conn: Connection, receiver: mpsc::Receiver<Request>) {
    while let Ok(first) = receiver.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_GROUP {
            match receiver.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let mut stores: Vec<(Vec<RawEvent>, Reply)> = Vec::new();
        for request in batch {
            match request {
                Request::Store(events, reply) => stores.push((events, reply)),
                Request::Job(job) => {
                    // Keep order: stores sent before this job commit first.
                    commit_stores(&mut conn, std::mem::take(&mut stores));
                    job(&mut conn);
                }
            }
        }
        commit_stores(&mut conn, stores);
    }
}

/// Writes every waiting store request in one transaction (one fsync).
fn commit_stores(conn: &mut Connection, stores: Vec<(Vec<RawEvent>, Reply)>) {
    if stores.is_empty() {
        return;
    }
    let result = (|| -> rusqlite::Result<()> {
        let tx = conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO events (id, name, occurred_on, attributes, stored_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            let stored_at = format_time(now());
            for (events, _) in &stores {
                for e in events {
                    insert.execute(params![
                        e.id.as_str(),
                        e.name,
                        format_time(e.occurred_on),
                        e.attributes,
                        stored_at
                    ])?;
                }
            }
        }
        tx.commit()
    })();
    match result {
        Ok(()) => {
            for (_, reply) in stores {
                let _ = reply.send(Ok(()));
            }
        }
        Err(group_error) if stores.len() > 1 => {
            // One bad request must not fail its neighbours: retry each alone.
            tracing::warn!(error = %group_error, requests = stores.len(), "group commit failed; retrying requests one by one");
            for store in stores {
                commit_stores(conn, vec![store]);
            }
        }
        Err(e) => {
            for (_, reply) in stores {
                let _ = reply.send(Err(StoreError::Sqlite(clone_error(&e))));
            }
        }
    }
}

fn clone_error(e: &rusqlite::Error) -> rusqlite::Error {
    match e {
        rusqlite::Error::SqliteFailure(code, msg) => {
            rusqlite::Error::SqliteFailure(*code, msg.clone())
        }
        other => rusqlite::Error::ToSqlConversionFailure(other.to_string().into()),
    }
}

const COLUMNS: &str = "seq, id, name, occurred_on, attributes, stored_at, attempts, last_error, last_attempt_at, dead";

fn row_to_event(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<StoredEvent, StoreError>> {
    let seq: i64 = row.get(0)?;
    let id: String = row.get(1)?;
    let name: String = row.get(2)?;
    let occurred_on: String = row.get(3)?;
    let attributes: String = row.get(4)?;
    let stored_at: String = row.get(5)?;
    let attempts: i64 = row.get(6)?;
    let last_error: Option<String> = row.get(7)?;
    let last_attempt_at: Option<String> = row.get(8)?;
    let dead: bool = row.get(9)?;
    let time = |text: &str| parse_time(text).map_err(|reason| StoreError::Corrupt { seq, reason });
    Ok((|| {
        Ok(StoredEvent {
            event: RawEvent {
                id: EventId::from(id),
                name,
                occurred_on: time(&occurred_on)?,
                attributes,
            },
            seq,
            stored_at: time(&stored_at)?,
            attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
            last_error,
            last_attempt_at: last_attempt_at.as_deref().map(time).transpose()?,
            dead,
        })
    })())
}

fn select(
    conn: &Connection,
    filter: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<StoredEvent>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM events {filter}"))?;
    let rows = stmt.query_map(args, row_to_event)?;
    let mut out = Vec::new();
    for row in rows {
        out.push(row??);
    }
    Ok(out)
}

fn limit(max: usize) -> i64 {
    i64::try_from(max).unwrap_or(i64::MAX)
}

impl EventStore for SqliteStore {
    fn store(&self, events: Vec<RawEvent>) -> BoxFuture<'_, Result<(), StoreError>> {
        let (tx, rx) = oneshot::channel();
        let sent = self.send(Request::Store(events, tx));
        Box::pin(async move {
            sent?;
            rx.await.unwrap_or(Err(StoreError::Closed))
        })
    }

    fn peek(&self, max: usize) -> BoxFuture<'_, Result<Vec<StoredEvent>, StoreError>> {
        self.job(move |conn| select(conn, "WHERE dead = 0 ORDER BY seq LIMIT ?1", [limit(max)]))
    }

    fn ack(&self, ids: Vec<EventId>) -> BoxFuture<'_, Result<usize, StoreError>> {
        self.job(move |conn| {
            let tx = conn.transaction()?;
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
        self.job(move |conn| {
            let tx = conn.transaction()?;
            let events = select(&tx, "WHERE dead = 0 ORDER BY seq LIMIT ?1", [limit(max)])?;
            {
                let mut delete = tx.prepare_cached("DELETE FROM events WHERE seq = ?1")?;
                for e in &events {
                    delete.execute([e.seq])?;
                }
            }
            tx.commit()?;
            Ok(events)
        })
    }

    fn record_failure(
        &self,
        id: EventId,
        error: String,
        dead: bool,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        self.job(move |conn| {
            conn.execute(
                "UPDATE events SET attempts = attempts + 1, last_error = ?2, last_attempt_at = ?3, dead = (dead OR ?4) WHERE id = ?1",
                params![id.as_str(), error, format_time(now()), dead],
            )?;
            Ok(())
        })
    }

    fn get(&self, id: EventId) -> BoxFuture<'_, Result<Option<StoredEvent>, StoreError>> {
        self.job(move |conn| Ok(select(conn, "WHERE id = ?1", [id.as_str()])?.pop()))
    }

    fn dead_letters(&self, max: usize) -> BoxFuture<'_, Result<Vec<StoredEvent>, StoreError>> {
        self.job(move |conn| select(conn, "WHERE dead = 1 ORDER BY seq LIMIT ?1", [limit(max)]))
    }

    fn requeue(&self, id: EventId) -> BoxFuture<'_, Result<bool, StoreError>> {
        self.job(move |conn| {
            // A new seq puts it at the end of the queue.
            let tx = conn.transaction()?;
            let row = tx
                .query_row(
                    "SELECT id, name, occurred_on, attributes, stored_at FROM events WHERE id = ?1 AND dead = 1",
                    [id.as_str()],
                    |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?, r.get::<_, String>(4)?)),
                )
                .optional()?;
            let Some((id, name, occurred_on, attributes, stored_at)) = row else {
                return Ok(false);
            };
            tx.execute("DELETE FROM events WHERE id = ?1", [&id])?;
            tx.execute(
                "INSERT INTO events (id, name, occurred_on, attributes, stored_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, name, occurred_on, attributes, stored_at],
            )?;
            tx.commit()?;
            Ok(true)
        })
    }

    fn purge_dead(&self) -> BoxFuture<'_, Result<usize, StoreError>> {
        self.job(|conn| Ok(conn.execute("DELETE FROM events WHERE dead = 1", [])?))
    }

    fn stats(&self) -> BoxFuture<'_, Result<StoreStats, StoreError>> {
        self.job(|conn| {
            let (pending, dead): (i64, i64) = conn.query_row(
                "SELECT COALESCE(SUM(dead = 0), 0), COALESCE(SUM(dead = 1), 0) FROM events",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            Ok(StoreStats {
                pending: pending.max(0) as u64,
                dead: dead.max(0) as u64,
            })
        })
    }
}
