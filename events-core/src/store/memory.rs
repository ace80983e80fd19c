//! The in-memory store, for tests.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::error::StoreError;
use super::event::{EventState, StoreStats, StoredEvent};
use super::event_store::EventStore;
use super::retention::Retention;
use crate::envelope::{now, EventId, RawEvent};
use crate::publisher::BoxFuture;

/// An in-memory store with the same semantics as [`SqliteStore`](super::SqliteStore), for tests.
#[derive(Debug)]
pub struct MemoryStore {
    state: Mutex<MemoryState>,
    retention: Retention,
    lease: Duration,
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore {
            state: Mutex::default(),
            retention: Retention::default(),
            lease: super::DEFAULT_CLAIM_LEASE,
        }
    }
}

#[derive(Debug, Default)]
struct MemoryState {
    next_seq: i64,
    rows: BTreeMap<i64, StoredEvent>,
    /// Claims by seq: until when.
    claims: BTreeMap<i64, Instant>,
}

impl MemoryState {
    fn seq_of(&self, id: &EventId) -> Option<i64> {
        self.rows
            .values()
            .find(|r| &r.event.id == id)
            .map(|r| r.seq)
    }

    fn insert(&mut self, event: RawEvent, state: EventState, error: Option<&str>) {
        if self.seq_of(&event.id).is_some() {
            return;
        }
        self.next_seq += 1;
        let seq = self.next_seq;
        let at = now();
        self.rows.insert(
            seq,
            StoredEvent {
                event,
                seq,
                stored_at: at,
                attempts: u32::from(error.is_some()),
                last_error: error.map(str::to_owned),
                last_attempt_at: error.map(|_| at),
                state,
            },
        );
    }

    fn claimed(&self, seq: i64) -> bool {
        self.claims
            .get(&seq)
            .is_some_and(|until| *until > Instant::now())
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore::default()
    }

    /// An empty store keeping handled events within `retention`.
    pub fn with_retention(retention: Retention) -> Self {
        MemoryStore {
            retention,
            ..MemoryStore::default()
        }
    }

    /// An empty store whose claims last `lease`.
    pub fn with_claim_lease(lease: Duration) -> Self {
        MemoryStore {
            lease,
            ..MemoryStore::default()
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut MemoryState) -> R) -> R {
        // A panic while holding the lock cannot leave the map half-changed
        // (every closure below is a single insert/remove), so a poisoned lock
        // is still consistent.
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    fn pending(&self, max: usize, free_only: bool) -> Vec<i64> {
        self.with(|s| {
            s.rows
                .values()
                .filter(|r| r.state == EventState::Pending && !(free_only && s.claimed(r.seq)))
                .take(max)
                .map(|r| r.seq)
                .collect()
        })
    }
}

fn ready<'a, T: Send + 'a>(value: T) -> BoxFuture<'a, T> {
    Box::pin(std::future::ready(value))
}

impl EventStore for MemoryStore {
    fn store(&self, events: Vec<RawEvent>) -> BoxFuture<'_, Result<(), StoreError>> {
        self.with(|s| {
            for event in events {
                s.insert(event, EventState::Pending, None);
            }
        });
        ready(Ok(()))
    }

    fn store_dead(
        &self,
        events: Vec<RawEvent>,
        error: String,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        self.with(|s| {
            for event in events {
                s.insert(event, EventState::Dead, Some(&error));
            }
        });
        ready(Ok(()))
    }

    fn peek(&self, max: usize) -> BoxFuture<'_, Result<Vec<StoredEvent>, StoreError>> {
        let seqs = self.pending(max, false);
        ready(Ok(self.with(|s| {
            seqs.iter().filter_map(|q| s.rows.get(q).cloned()).collect()
        })))
    }

    fn claim(&self, max: usize) -> BoxFuture<'_, Result<Vec<StoredEvent>, StoreError>> {
        let seqs = self.pending(max, true);
        let until = Instant::now() + self.lease;
        ready(Ok(self.with(|s| {
            seqs.iter()
                .filter_map(|q| {
                    s.claims.insert(*q, until);
                    s.rows.get(q).cloned()
                })
                .collect()
        })))
    }

    fn ack(&self, ids: Vec<EventId>) -> BoxFuture<'_, Result<usize, StoreError>> {
        ready(Ok(self.with(|s| {
            let before = s.rows.len();
            s.rows.retain(|_, r| !ids.contains(&r.event.id));
            let rows = &s.rows;
            s.claims.retain(|seq, _| rows.contains_key(seq));
            before - s.rows.len()
        })))
    }

    fn consume(&self, max: usize) -> BoxFuture<'_, Result<Vec<StoredEvent>, StoreError>> {
        ready(Ok(self.with(|s| {
            let seqs: Vec<i64> = s
                .rows
                .values()
                .filter(|r| r.state != EventState::Dead && !s.claimed(r.seq))
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
            if let Some(seq) = s.seq_of(&id) {
                s.claims.remove(&seq);
                if let Some(row) = s.rows.get_mut(&seq) {
                    if row.state != EventState::Handled {
                        row.attempts += 1;
                        row.last_error = Some(error);
                        row.last_attempt_at = Some(now());
                        if dead {
                            row.state = EventState::Dead;
                        }
                    }
                }
            }
        });
        ready(Ok(()))
    }

    fn mark_handled(&self, ids: Vec<EventId>) -> BoxFuture<'_, Result<usize, StoreError>> {
        let retention = self.retention;
        ready(Ok(self.with(|s| {
            let mut n = 0;
            for row in s.rows.values_mut() {
                if row.state == EventState::Pending && ids.contains(&row.event.id) {
                    row.state = EventState::Handled;
                    // As the SQLite store does: a handled event holds no claim.
                    s.claims.remove(&row.seq);
                    n += 1;
                }
            }
            let handled: Vec<(i64, chrono::DateTime<chrono::Utc>)> = s
                .rows
                .values()
                .filter(|r| r.state == EventState::Handled)
                .map(|r| (r.seq, r.stored_at))
                .collect();
            let excess = retention.max_events.map_or(0, |max| {
                handled
                    .len()
                    .saturating_sub(usize::try_from(max).unwrap_or(usize::MAX))
            });
            let cutoff = retention
                .max_age
                .and_then(|age| chrono::Duration::from_std(age).ok())
                .and_then(|age| now().checked_sub_signed(age));
            for (i, (seq, stored_at)) in handled.iter().enumerate() {
                if i < excess || cutoff.is_some_and(|c| *stored_at < c) {
                    s.rows.remove(seq);
                }
            }
            n
        })))
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
                .filter(|r| r.state == EventState::Dead)
                .take(max)
                .cloned()
                .collect()
        })))
    }

    fn handled(&self, max: usize) -> BoxFuture<'_, Result<Vec<StoredEvent>, StoreError>> {
        ready(Ok(self.with(|s| {
            s.rows
                .values()
                .rev()
                .filter(|r| r.state == EventState::Handled)
                .take(max)
                .cloned()
                .collect()
        })))
    }

    fn requeue(&self, id: EventId) -> BoxFuture<'_, Result<bool, StoreError>> {
        ready(Ok(self.with(|s| {
            let Some(seq) = s
                .seq_of(&id)
                .filter(|seq| s.rows.get(seq).is_some_and(|r| r.state == EventState::Dead))
            else {
                return false;
            };
            let Some(mut row) = s.rows.remove(&seq) else {
                return false;
            };
            s.next_seq += 1;
            row.seq = s.next_seq;
            row.state = EventState::Pending;
            row.attempts = 0;
            s.rows.insert(row.seq, row);
            true
        })))
    }

    fn purge_dead(&self) -> BoxFuture<'_, Result<usize, StoreError>> {
        ready(Ok(self.with(|s| {
            let before = s.rows.len();
            s.rows.retain(|_, r| r.state != EventState::Dead);
            before - s.rows.len()
        })))
    }

    fn stats(&self) -> BoxFuture<'_, Result<StoreStats, StoreError>> {
        ready(Ok(self.with(|s| {
            let count = |state| s.rows.values().filter(|r| r.state == state).count() as u64;
            StoreStats {
                pending: count(EventState::Pending),
                dead: count(EventState::Dead),
                handled: count(EventState::Handled),
                unreadable: 0,
                claimed: s
                    .rows
                    .values()
                    .filter(|r| r.state == EventState::Pending && s.claimed(r.seq))
                    .count() as u64,
            }
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(n: u32) -> RawEvent {
        RawEvent {
            id: EventId::from(format!("e{n}")),
            name: "acme.shop.v1.order.placed".to_owned(),
            occurred_on: now(),
            attributes: "{}".to_owned(),
            trace: None,
        }
    }

    #[tokio::test]
    async fn claims_failures_marks_and_the_journal() {
        let store = MemoryStore::with_retention(Retention {
            max_events: Some(1),
            max_age: None,
        });
        store.store(vec![raw(1), raw(2), raw(3)]).await.unwrap();
        store.store(vec![raw(1)]).await.unwrap();
        assert_eq!(store.stats().await.unwrap().pending, 3, "ids are unique");
        let claimed = store.claim(2).await.unwrap();
        assert_eq!(claimed.len(), 2);
        assert_eq!(store.claim(10).await.unwrap().len(), 1, "the rest only");
        assert_eq!(store.stats().await.unwrap().claimed, 3);
        store
            .record_failure(EventId::from("e1"), "down".into(), true)
            .await
            .unwrap();
        let dead = store.dead_letters(10).await.unwrap();
        assert_eq!(dead[0].last_error.as_deref(), Some("down"));
        assert_eq!(dead[0].attempts, 1);
        assert!(store.requeue(EventId::from("e1")).await.unwrap());
        assert_eq!(
            store
                .mark_handled(vec![EventId::from("e2"), EventId::from("e3")])
                .await
                .unwrap(),
            2
        );
        let stats = store.stats().await.unwrap();
        assert_eq!(
            (stats.pending, stats.handled, stats.dead),
            (1, 1, 0),
            "{stats:?}"
        );
        assert_eq!(
            store.handled(10).await.unwrap()[0].event.id,
            EventId::from("e3")
        );
        assert_eq!(store.ack(vec![EventId::from("e1")]).await.unwrap(), 1);
        assert_eq!(
            store.consume(10).await.unwrap().len(),
            1,
            "the journal's one"
        );
        assert_eq!(store.stats().await.unwrap(), StoreStats::default());
    }
}
