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

impl StoreStats {
    /// What `pending` means, in each mode: the sentence the `events` tool
    /// prints beside the count, so an operator reads the same words as the
    /// docs. `local_pending` is how many of the pending events a local-mode
    /// bus stored ([`EventStore::local_pending`](crate::store::EventStore::local_pending)).
    ///
    /// ```
    /// use events_core::store::StoreStats;
    /// let stats = StoreStats { pending: 3, ..StoreStats::default() };
    /// let note = stats.pending_meaning(1);
    /// assert!(note.starts_with("eventbridge mode: waiting for a remote bus"));
    /// assert!(note.contains("1 stored in local mode"));
    /// ```
    pub fn pending_meaning(&self, local_pending: u64) -> String {
        let mut note = String::from(
            "eventbridge mode: waiting for a remote bus, sent by a replayer; \
             local mode: stored, handlers not finished, run by the next local-mode start",
        );
        if self.claimed > 0 {
            note.push_str(&format!("; {} being sent by a replayer", self.claimed));
        }
        if local_pending > 0 {
            note.push_str(&format!(
                "; {local_pending} stored in local mode, never sent to a remote bus"
            ));
        }
        note
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_says_what_it_means_in_each_mode() {
        let stats = StoreStats {
            pending: 5,
            claimed: 2,
            ..StoreStats::default()
        };
        let note = stats.pending_meaning(0);
        assert!(
            note.contains("eventbridge mode: waiting for a remote bus"),
            "{note}"
        );
        assert!(
            note.contains("local mode: stored, handlers not finished"),
            "{note}"
        );
        assert!(note.ends_with("; 2 being sent by a replayer"), "{note}");
        assert!(!note.contains("stored in local mode"), "{note}");
        assert!(stats
            .pending_meaning(3)
            .ends_with("; 3 stored in local mode, never sent to a remote bus"));
    }

    #[test]
    fn states_have_the_words_the_tool_prints() {
        assert_eq!(EventState::Pending.to_string(), "pending");
        assert_eq!(EventState::Dead.as_str(), "dead");
        assert_eq!(EventState::Handled.as_str(), "handled");
    }
}
