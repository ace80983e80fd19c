//! The `EventStore` trait every store implements, and the default claim lease.

use std::time::Duration;

use super::error::StoreError;
use super::event::{StoreStats, StoredEvent, UnreadableRow};
use crate::envelope::{EventId, RawEvent};
use crate::publisher::BoxFuture;

/// How long a replayer's claim on the events it is sending lasts; after
/// that, a replayer that died is taken to be gone and the events go back to
/// the queue.
pub const DEFAULT_CLAIM_LEASE: Duration = Duration::from_secs(300);

/// Durable storage of events waiting for delivery.
///
/// Every method is atomic: on `Err` nothing changed. Ids are unique: storing
/// an id that is already present (pending, dead or handled) is a no-op, so a
/// retried `store` never duplicates an event.
///
/// The methods with a default body came later; a store that keeps the
/// defaults works, without claims (concurrent replayers may send an event
/// twice) and without a handled journal (handled events are deleted).
///
/// # Errors
///
/// Every fallible method fails the same ways, with nothing changed: the
/// storage failed ([`StoreError::Sqlite`], a full disk said so),
/// [`StoreError::ReadOnly`] for a write to a store opened read-only,
/// [`StoreError::NotDurable`] for a write the store could not make durable,
/// [`StoreError::Corrupt`] for a row that cannot be read back, and
/// [`StoreError::Closed`] once the store is closed. A missing id is not an
/// error ([`get`](Self::get) answers `None`, [`requeue`](Self::requeue)
/// `false`).
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

    /// Stores events published by a local-mode bus (its handlers run in
    /// this process): the same as [`store`](Self::store), and marked as
    /// local-mode events, which are never sent to a remote bus
    /// ([`claim`](Self::claim) leaves them out) even if the store is later
    /// used in eventbridge mode. A local-mode program that opens the store
    /// again runs the handlers of those still pending
    /// ([`claim_unfinished_local`](Self::claim_unfinished_local)).
    fn store_local(&self, events: Vec<RawEvent>) -> BoxFuture<'_, Result<(), StoreError>> {
        self.store(events)
    }

    /// Claims, for the store's lease, the oldest `max` local-mode events
    /// that an earlier run of a program left pending (stored, handlers not
    /// finished: an async bus dropped without `shutdown`, a killed process),
    /// so their handlers run once. Only a store opened while no other
    /// process had it open has any: the events of a process still running
    /// are its own. The default has none.
    fn claim_unfinished_local(
        &self,
        max: usize,
    ) -> BoxFuture<'_, Result<Vec<StoredEvent>, StoreError>> {
        let _ = max;
        Box::pin(async { Ok(Vec::new()) })
    }

    /// How many pending events were stored by a local-mode bus (part of
    /// [`StoreStats::pending`]). The default counts none.
    fn local_pending(&self) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(async { Ok(0) })
    }

    /// How many local-mode events an earlier run left unfinished, as found
    /// when the store was opened (what
    /// [`claim_unfinished_local`](Self::claim_unfinished_local) will hand
    /// out): a bus built on the store runs their handlers when this is not
    /// zero. The default has none.
    fn unfinished_local_at_open(&self) -> u64 {
        0
    }
}
