//! What the store holds: an event with its delivery history, its state, unreadable rows, and the counts.

use chrono::{DateTime, Utc};

use crate::envelope::RawEvent;

/// Where an event stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventState {
    /// Waiting to be delivered to a remote bus (or, in local mode, stored and
    /// not yet handled in process).
    Pending,
    /// A dead letter: kept, never replayed until requeued.
    Dead,
    /// Handled in process (local mode): kept as a journal within the
    /// store's [`Retention`](crate::store::Retention), never replayed.
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
    /// decoded; see [`EventStore::unreadable`](crate::store::EventStore::unreadable)).
    pub unreadable: u64,
    /// Pending events claimed right now by a replayer.
    pub claimed: u64,
}
