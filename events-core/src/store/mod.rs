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
//! An event is **pending** (waiting for a remote bus), **dead** (a dead
//! letter), or **handled** (local mode: its handlers ran; kept as a journal
//! within the [`Retention`]). Replayers [`claim`](EventStore::claim) what they
//! send, for a lease, so several share one store without sending an event
//! twice at once.
//!
//! The SQLite store opens only a file it can prove is its own
//! ([`APPLICATION_ID`] or its marker table, checked before any write; a
//! missing or empty file becomes a store), creates its files readable by the
//! owner only (0600; a folder it creates, 0700), repairs damage only while no
//! other process has the store open, and moves a row it cannot read out of
//! the queue (see [`UnreadableRow`]) so it blocks nothing.
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
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::envelope::{EventId, RawEvent};
use crate::publisher::BoxFuture;

mod files;
mod memory;
mod repair;
mod sqlite;
pub(crate) mod time;

pub use memory::MemoryStore;
pub use sqlite::{CheckReport, OpenReport, SqliteOptions, SqliteStore};

/// Deprecated: not public API (the store's own time format).
#[doc(hidden)]
#[deprecated(note = "not public API")]
pub fn store_time(time: DateTime<Utc>) -> String {
    time::store_time(time)
}

/// Deprecated: not public API (the store's own time format).
#[doc(hidden)]
#[deprecated(note = "not public API")]
pub fn parse_store_time(text: &str) -> Result<DateTime<Utc>, String> {
    time::parse_store_time(text)
}

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: i64 = sqlite::SCHEMA_VERSION;

/// The SQLite `application_id` of an event store (`"EVST"`): the proof,
/// checked before any write, that a file is an event store.
pub const APPLICATION_ID: i32 = 0x4556_5354;

/// Where an event stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventState {
    /// Waiting to be delivered to a remote bus (or, in local mode, stored and
    /// not yet handled in process).
    Pending,
    /// A dead letter: kept, never replayed until requeued.
    Dead,
    /// Handled in process (local mode): kept as a journal within the
    /// store's [`Retention`], never replayed.
    Handled,
}

impl EventState {
    /// The word the `events` tool prints.
    pub fn as_str(self) -> &'static str {
        match self {
            EventState::Pending => "pending",
            EventState::Dead => "dead",
            EventState::Handled => "handled",
        }
    }
}

impl std::fmt::Display for EventState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

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
    /// Pending, dead letter, or handled.
    pub state: EventState,
}

impl StoredEvent {
    /// Whether it is a dead letter.
    pub fn is_dead(&self) -> bool {
        self.state == EventState::Dead
    }
}

/// A stored row that could not be read back (a damaged byte, a value this
/// build cannot decode). It was moved out of the queue, so it blocks nothing,
/// and is kept with its raw bytes as a dead letter of its own kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreadableRow {
    /// Its position in the queue when it was found.
    pub seq: i64,
    /// The event id as far as it could be read (lossy UTF-8).
    pub id: String,
    /// Each column's raw bytes as stored (`None` for SQL `NULL`).
    pub columns: Vec<(String, Option<Vec<u8>>)>,
    /// Why it could not be read.
    pub reason: String,
    /// When it was found and moved.
    pub found_at: DateTime<Utc>,
}

/// Counts of what the store holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreStats {
    /// Events waiting to be delivered to a remote bus.
    pub pending: u64,
    /// Dead letters.
    pub dead: u64,
    /// Events handled in process (local mode), kept as a journal within the
    /// retention.
    pub handled: u64,
    /// Unreadable rows moved out of the queue (dead letters that cannot be
    /// decoded; see [`EventStore::unreadable`]).
    pub unreadable: u64,
    /// Pending events claimed right now by a replayer.
    pub claimed: u64,
}

/// How many handled events (local mode) the store keeps. The newest are
/// kept; older ones are deleted as new ones are marked handled.
///
/// The default keeps the newest 10,000 handled events and none older than
/// 7 days. `EVENT_BUS_STORE_RETENTION` sets it from the environment
/// ([`Retention::parse`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Most handled events kept (`None`: no count limit).
    pub max_events: Option<u64>,
    /// Oldest handled event kept, by the time it was stored (`None`: no age
    /// limit).
    pub max_age: Option<Duration>,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            max_events: Some(10_000),
            max_age: Some(Duration::from_secs(7 * 24 * 3600)),
        }
    }
}

/// The environment variable that sets the [`Retention`].
pub const RETENTION_VAR: &str = "EVENT_BUS_STORE_RETENTION";

impl Retention {
    /// Keeps no handled event at all: handled means deleted.
    pub const NONE: Retention = Retention {
        max_events: Some(0),
        max_age: None,
    };

    /// Parses `EVENT_BUS_STORE_RETENTION`'s syntax: a count (`10000`), an
    /// age (`30s`, `15m`, `12h`, `7d`), both separated by a comma
    /// (`10000,7d`), or `unlimited`.
    ///
    /// ```
    /// use events_core::store::Retention;
    /// use std::time::Duration;
    /// let r = Retention::parse("5000,2d").unwrap();
    /// assert_eq!(r.max_events, Some(5000));
    /// assert_eq!(r.max_age, Some(Duration::from_secs(2 * 86_400)));
    /// assert!(Retention::parse("soon").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<Retention, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("unlimited") {
            return Ok(Retention {
                max_events: None,
                max_age: None,
            });
        }
        let mut retention = Retention {
            max_events: None,
            max_age: None,
        };
        let bad = || {
            format!(
                "{RETENTION_VAR}=`{}` is not valid: expected a count of handled events to keep (`10000`), \
                 an age (`30s`, `15m`, `12h`, `7d`), both (`10000,7d`) or `unlimited`",
                time::prefix(text, 64)
            )
        };
        for part in text.split(',').map(str::trim) {
            if let Ok(count) = part.parse::<u64>() {
                if retention.max_events.replace(count).is_some() {
                    return Err(bad());
                }
                continue;
            }
            let (number, unit) = part.split_at(part.len().saturating_sub(1));
            let seconds = match unit {
                "s" => 1,
                "m" => 60,
                "h" => 3600,
                "d" => 86_400,
                _ => return Err(bad()),
            };
            let n: u64 = number.parse().map_err(|_| bad())?;
            let age = Duration::from_secs(n.checked_mul(seconds).ok_or_else(bad)?);
            if retention.max_age.replace(age).is_some() {
                return Err(bad());
            }
        }
        Ok(retention)
    }

    /// The retention `EVENT_BUS_STORE_RETENTION` asks for, else (unset or
    /// empty) the default.
    pub fn from_env() -> Result<Retention, StoreError> {
        match std::env::var(RETENTION_VAR) {
            Ok(text) if text.trim().is_empty() => Ok(Retention::default()),
            Ok(text) => Retention::parse(&text).map_err(StoreError::Config),
            Err(std::env::VarError::NotPresent) => Ok(Retention::default()),
            Err(std::env::VarError::NotUnicode(_)) => Err(StoreError::Config(format!(
                "{RETENTION_VAR} is not valid UTF-8"
            ))),
        }
    }
}

/// How long a replayer's claim on the events it is sending lasts; after
/// that, a replayer that died is taken to be gone and the events go back to
/// the queue.
pub const DEFAULT_CLAIM_LEASE: Duration = Duration::from_secs(300);

/// A store operation failed; the events it concerned were not stored or
/// changed.
#[derive(thiserror::Error)]
pub enum StoreError {
    /// The store could not be opened or created.
    #[error("cannot open the event store at `{path}`")]
    Open {
        /// The store's path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The file is not an event store; it was not changed.
    #[error(
        "`{path}` is not an event store ({reason}); it was left untouched. \
         Point EVENT_BUS_STORE_PATH (or --store) at an event store, a new path, or an empty file"
    )]
    NotAStore {
        /// The file.
        path: PathBuf,
        /// What it is instead.
        reason: String,
    },
    /// The store is damaged and cannot be repaired now.
    #[error("the event store at `{path}` is damaged ({reason}); {action}")]
    Damaged {
        /// The store's path.
        path: PathBuf,
        /// What is wrong.
        reason: String,
        /// What happened and what to do.
        action: String,
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
    /// A setting is invalid.
    #[error("{0}")]
    Config(String),
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
    /// The store was opened read-only.
    #[error("the event store was opened read-only")]
    ReadOnly,
    /// The store's writer thread is gone (the store was closed).
    #[error("the event store is closed")]
    Closed,
}

/// The message and its causes (the OS reason), the way `anyhow` reports,
/// so `main() -> Result<(), Box<dyn Error>>` shows a person the sentence.
impl std::fmt::Debug for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        crate::error::write_chain(self, f)
    }
}

/// Durable storage of events waiting for delivery.
///
/// Every method is atomic: on `Err` nothing changed. Ids are unique: storing
/// an id that is already present (pending, dead or handled) is a no-op, so a
/// retried `store` never duplicates an event.
///
/// The methods with a default body came later; a store that keeps the
/// defaults works, without claims (concurrent replayers may send an event
/// twice) and without a handled journal (handled events are deleted).
pub trait EventStore: Send + Sync + 'static {
    /// Stores events; returns once they are durable.
    fn store(&self, events: Vec<RawEvent>) -> BoxFuture<'_, Result<(), StoreError>>;
    /// The oldest `max` pending events, without removing them.
    fn peek(&self, max: usize) -> BoxFuture<'_, Result<Vec<StoredEvent>, StoreError>>;
    /// Removes delivered events; returns how many were removed.
    fn ack(&self, ids: Vec<EventId>) -> BoxFuture<'_, Result<usize, StoreError>>;
    /// Takes the oldest `max` events out of the store (the seed's
    /// `consume`), pending or handled (local mode's journal), never dead
    /// letters: they are gone once this returns. Events claimed by a
    /// replayer are left to it.
    fn consume(&self, max: usize) -> BoxFuture<'_, Result<Vec<StoredEvent>, StoreError>>;
    /// Records a failed delivery: one more attempt, the error and its time;
    /// `dead` turns the event into a dead letter. Releases its claim.
    fn record_failure(
        &self,
        id: EventId,
        error: String,
        dead: bool,
    ) -> BoxFuture<'_, Result<(), StoreError>>;
    /// One event by id, pending, dead or handled.
    fn get(&self, id: EventId) -> BoxFuture<'_, Result<Option<StoredEvent>, StoreError>>;
    /// The oldest `max` dead letters.
    fn dead_letters(&self, max: usize) -> BoxFuture<'_, Result<Vec<StoredEvent>, StoreError>>;
    /// Moves a dead letter back to the end of the pending queue, attempts
    /// reset; `false` if no dead letter has this id.
    fn requeue(&self, id: EventId) -> BoxFuture<'_, Result<bool, StoreError>>;
    /// Deletes every dead letter (unreadable rows too); returns how many.
    fn purge_dead(&self) -> BoxFuture<'_, Result<usize, StoreError>>;
    /// Counts.
    fn stats(&self) -> BoxFuture<'_, Result<StoreStats, StoreError>>;

    /// Claims the oldest `max` pending events that no live claim holds, for
    /// the store's lease: until it expires (or the events are acknowledged
    /// or fail), no other replayer gets them. A replayer that dies leaves
    /// claims that expire, and its events come back.
    fn claim(&self, max: usize) -> BoxFuture<'_, Result<Vec<StoredEvent>, StoreError>> {
        self.peek(max)
    }

    /// Stores events directly as dead letters with `error`, in one atomic
    /// step (an event the remote bus refused for good on first publish).
    fn store_dead(
        &self,
        events: Vec<RawEvent>,
        error: String,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let ids: Vec<EventId> = events.iter().map(|e| e.id.clone()).collect();
            self.store(events).await?;
            for id in ids {
                self.record_failure(id, error.clone(), true).await?;
            }
            Ok(())
        })
    }

    /// Marks pending events as handled in process (local mode): they leave
    /// the queue and are kept as a journal within the store's retention.
    /// Returns how many changed.
    fn mark_handled(&self, ids: Vec<EventId>) -> BoxFuture<'_, Result<usize, StoreError>> {
        self.ack(ids)
    }

    /// The newest `max` handled events, newest first.
    fn handled(&self, max: usize) -> BoxFuture<'_, Result<Vec<StoredEvent>, StoreError>> {
        let _ = max;
        Box::pin(async { Ok(Vec::new()) })
    }

    /// The oldest `max` unreadable rows (see [`UnreadableRow`]).
    fn unreadable(&self, max: usize) -> BoxFuture<'_, Result<Vec<UnreadableRow>, StoreError>> {
        let _ = max;
        Box::pin(async { Ok(Vec::new()) })
    }
}
