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

use std::path::PathBuf;

use chrono::{DateTime, Utc};

use crate::envelope::{EventId, RawEvent};
use crate::publisher::BoxFuture;

mod memory;
mod sqlite;

pub use memory::MemoryStore;
pub use sqlite::{OpenReport, SqliteOptions, SqliteStore};

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: i64 = sqlite::SCHEMA_VERSION;

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
