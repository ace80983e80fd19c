//! The in-memory store, for tests.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::{EventStore, StoreError, StoreStats, StoredEvent};
use crate::envelope::{now, EventId, RawEvent};
use crate::publisher::BoxFuture;

/// An in-memory store with the same semantics as [`SqliteStore`](super::SqliteStore), for tests.
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
