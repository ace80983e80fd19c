//! The failover store: where events wait, durably, until a remote bus takes them.
//!
//! It is SPEC §7; in local mode it is where published events are kept.
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

mod clock;
mod error;
mod event;
mod event_store;
mod files;
mod memory;
mod ownership;
mod presence;
mod repair;
mod report;
mod retention;
mod schema;
mod sqlite;
pub(crate) mod time;

pub use clock::StoreClock;
pub use error::StoreError;
pub use event::{EventState, StoreStats, StoredEvent, UnreadableRow};
pub use event_store::{EventStore, DEFAULT_CLAIM_LEASE};
pub use memory::MemoryStore;
pub use report::{CheckReport, OpenReport};
pub use retention::{Retention, RETENTION_VAR};
pub use schema::{APPLICATION_ID, SCHEMA_VERSION};
pub use sqlite::{SqliteOptions, SqliteStore};

/// Deprecated: not public API (the store's own time format).
#[doc(hidden)]
#[deprecated(note = "not public API")]
pub fn store_time(time: chrono::DateTime<chrono::Utc>) -> String {
    time::store_time(time)
}

/// Deprecated: not public API (the store's own time format).
#[doc(hidden)]
#[deprecated(note = "not public API")]
pub fn parse_store_time(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    time::parse_store_time(text)
}
