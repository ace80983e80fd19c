//! Coalescing: concurrent publishes share PutEvents calls.
//!
//! Every `publish` puts its entries in one queue per publisher, each entry
//! tagged with its [`Caller`] and its index there, and then drives the
//! queue itself: whoever finds a free call slot (at most `concurrency`
//! calls in flight per publisher) takes up to a full call's worth of
//! entries, of any callers, and sends it; each entry's result goes to its
//! own caller. There is no background task: the calls run inside the
//! callers' futures, so a publisher shared by several tokio runtimes in turn
//! (a process-wide bus in many `#[tokio::test]`s) never depends on a task
//! of a runtime that is gone.
//!
//! When a call is sent:
//! - at once when it is full: [`MAX_ENTRIES`] entries, or the next entry
//!   would pass the request size limit;
//! - otherwise once its oldest entry has waited the *linger* (so callers
//!   publishing at about the same time join it), or at once for entries
//!   being re-sent after their backoff.
//!
//! Liveness: a caller drives the queue while any of its own entries is
//! unanswered, and waits on (1) its calls, (2) its own results, (3) a free
//! slot (one waiting caller is woken per slot freed) and (4) the time its
//! own next entry becomes due. Every queued entry has a waiting owner, so a
//! ready call always has someone to send it. A caller whose own results are
//! all in takes no new call and returns once the calls it started are
//! answered (each is one PutEvents: re-sends go back to the queue).
//!
//! Cancellation: a dropped caller takes its unsent entries out of the
//! queue; a call dropped before EventBridge answered (its caller was
//! dropped) gives every entry of it a retryable error, so their callers
//! fail them over to the store instead of waiting for ever.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use events_core::publisher::PublishError;
use events_core::wire;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::batch::MAX_ENTRIES;

/// What one event became: accepted with EventBridge's event id, or failed.
pub(crate) type EntryResult = Result<Option<String>, PublishError>;

/// The error of each entry of a call that was dropped (its caller was
/// cancelled) before EventBridge answered.
pub(crate) fn cancelled() -> PublishError {
    PublishError::retryable(
        "Cancelled",
        "the publish sending this event's PutEvents call was cancelled before EventBridge \
         answered; the event may or may not have been accepted",
    )
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // No code panics while holding these locks; if one did, the data is
    // still consistent (every update is a single push, pop or store).
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One `publish` call: where its results go.
#[derive(Debug)]
pub(crate) struct Caller {
    state: Mutex<CallerState>,
    /// Wakes the caller: a result arrived, or one of its entries is due.
    wake: Notify,
}

#[derive(Debug)]
struct CallerState {
    results: Vec<Option<EntryResult>>,
    /// Results still missing.
    left: usize,
    /// When the caller's queued entries become ready to send (one time per
    /// push or re-queue; past ones are dropped at each look).
    dues: Vec<Instant>,
}

impl Caller {
    pub(crate) fn new(events: usize) -> Arc<Caller> {
        Arc::new(Caller {
            state: Mutex::new(CallerState {
                results: vec![None; events],
                left: events,
                dues: Vec::new(),
            }),
            wake: Notify::new(),
        })
    }

    /// Records the result of entry `index` (the first one counts) and wakes
    /// the caller.
    pub(crate) fn complete(&self, index: usize, result: EntryResult) {
        {
            let mut state = lock(&self.state);
            if let Some(slot @ None) = state.results.get_mut(index) {
                *slot = Some(result);
                state.left -= 1;
            }
        }
        self.wake.notify_one();
    }

    /// Whether every result is in.
    pub(crate) fn is_done(&self) -> bool {
        lock(&self.state).left == 0
    }

    /// When to look at the queue again for this caller's own entries, as
    /// of `now` (the time of the last look): due times already past are
    /// forgotten, as that look saw their entries ready.
    pub(crate) fn next_due(&self, now: Instant) -> Option<Instant> {
        let mut state = lock(&self.state);
        state.dues.retain(|&due| due > now);
        state.dues.iter().min().copied()
    }

    fn due_at(&self, at: Instant) {
        {
            let mut state = lock(&self.state);
            if !state.dues.contains(&at) {
                state.dues.push(at);
            }
        }
        self.wake.notify_one();
    }

    /// Waits until a result arrives or an entry is due (or was, since the
    /// last wait).
    pub(crate) async fn woken(&self) {
        self.wake.notified().await;
    }

    /// The results, in order; one never given (which the queue does not
    /// allow) is a retryable error.
    pub(crate) fn results(&self) -> Vec<EntryResult> {
        let mut state = lock(&self.state);
        std::mem::take(&mut state.results)
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(PublishError::retryable(
                        "NotSent",
                        "the event was in no PutEvents call",
                    ))
                })
            })
            .collect()
    }
}

/// An entry waiting for (or in) a PutEvents call.
#[derive(Debug)]
pub(crate) struct Queued {
    /// Whose it is.
    pub(crate) caller: Arc<Caller>,
    /// Its index in the caller's events.
    pub(crate) index: usize,
    pub(crate) entry: wire::Entry,
    pub(crate) size: usize,
    /// When it may go in a call that is not full (queued + linger, or the
    /// end of its backoff when re-sent).
    pub(crate) ready_at: Instant,
    /// Sends so far.
    pub(crate) attempts: u32,
    /// When its caller queued it (the retry time bound counts from here).
    pub(crate) since: Instant,
}

/// The entries of one publisher waiting for a call, and its call slots.
#[derive(Debug, Default)]
pub(crate) struct Queue {
    state: Mutex<QueueState>,
    /// A call slot was freed: wakes one waiting caller to use it.
    slot_freed: Notify,
}

#[derive(Debug, Default)]
struct QueueState {
    /// New entries, in the order callers queued them.
    fresh: VecDeque<Queued>,
    /// Entries to send again, each once its backoff is over.
    retries: Vec<Queued>,
    /// PutEvents calls in flight.
    in_flight: usize,
}

impl Queue {
    /// Queues one caller's entries; the caller is due when the first may be
    /// sent in a call that is not full.
    pub(crate) fn push(&self, caller: &Caller, entries: Vec<Queued>) {
        let Some(first) = entries.first() else {
            return;
        };
        let ready_at = first.ready_at;
        lock(&self.state).fresh.extend(entries);
        lock(&caller.state).dues.push(ready_at);
    }

    /// Queues entries to send again (each ready at its own `ready_at`) and
    /// tells their callers when.
    pub(crate) fn requeue(&self, entries: Vec<Queued>) {
        if entries.is_empty() {
            return;
        }
        let callers: Vec<(Arc<Caller>, Instant)> = entries
            .iter()
            .map(|q| (q.caller.clone(), q.ready_at))
            .collect();
        lock(&self.state).retries.extend(entries);
        for (caller, at) in callers {
            caller.due_at(at);
        }
    }

    /// Takes the next call's entries if a slot is free and a call is ready
    /// as of `now`: re-sends whose backoff is over first, then new entries
    /// in order, at most [`MAX_ENTRIES`] and `max_bytes`. The slot is the
    /// caller's until the returned [`InFlight`] is dropped.
    pub(crate) fn take(
        &self,
        now: Instant,
        max_bytes: usize,
        concurrency: usize,
    ) -> Option<InFlight<'_>> {
        let mut state = lock(&self.state);
        if state.in_flight >= concurrency {
            return None;
        }
        // Plan: which re-sends, how many new entries, whether it is full.
        let mut retries: Vec<usize> = Vec::new();
        let mut count = 0usize;
        let mut bytes = 0usize;
        let mut full = false;
        for (i, q) in state.retries.iter().enumerate() {
            if q.ready_at > now {
                continue;
            }
            if count == MAX_ENTRIES || bytes + q.size > max_bytes {
                full = true;
                break;
            }
            retries.push(i);
            count += 1;
            bytes += q.size;
        }
        let mut fresh = 0usize;
        if !full {
            for q in &state.fresh {
                if count == MAX_ENTRIES || bytes + q.size > max_bytes {
                    full = true;
                    break;
                }
                fresh += 1;
                count += 1;
                bytes += q.size;
            }
        }
        let full = full || count == MAX_ENTRIES;
        let ready =
            full || !retries.is_empty() || state.fresh.front().is_some_and(|q| q.ready_at <= now);
        if count == 0 || !ready {
            return None;
        }
        let mut batch = Vec::with_capacity(count);
        for (taken, i) in retries.into_iter().enumerate() {
            // Indices shift left by one for each entry already taken.
            batch.push(state.retries.remove(i - taken));
        }
        batch.extend(state.fresh.drain(..fresh));
        state.in_flight += 1;
        Some(InFlight {
            queue: self,
            entries: batch,
        })
    }

    /// Waits until a call slot is freed (or was, since the last wait).
    pub(crate) async fn slot_freed(&self) {
        self.slot_freed.notified().await;
    }

    /// Takes a dropped caller's entries out of the queue: they were never
    /// sent, and nobody waits for them.
    pub(crate) fn forget(&self, caller: &Arc<Caller>) {
        let mut state = lock(&self.state);
        state.fresh.retain(|q| !Arc::ptr_eq(&q.caller, caller));
        state.retries.retain(|q| !Arc::ptr_eq(&q.caller, caller));
    }
}

/// One PutEvents call's entries and its slot. Dropped with entries still in
/// it (the call was cancelled before they were answered), it gives each a
/// retryable error; dropped at all, it frees the slot and wakes a waiting
/// caller to use it.
#[derive(Debug)]
pub(crate) struct InFlight<'a> {
    queue: &'a Queue,
    /// The entries not answered yet.
    pub(crate) entries: Vec<Queued>,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        for q in self.entries.drain(..) {
            q.caller.complete(q.index, Err(cancelled()));
        }
        lock(&self.queue.state).in_flight -= 1;
        self.queue.slot_freed.notify_one();
    }
}

/// Takes a caller's unsent entries out of the queue if its `publish` is
/// dropped before all its results are in.
pub(crate) struct CallerGuard<'a> {
    pub(crate) queue: &'a Queue,
    pub(crate) caller: &'a Arc<Caller>,
}

impl Drop for CallerGuard<'_> {
    fn drop(&mut self) {
        if !self.caller.is_done() {
            self.queue.forget(self.caller);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn queued(caller: &Arc<Caller>, index: usize, size: usize, ready_at: Instant) -> Queued {
        Queued {
            caller: caller.clone(),
            index,
            entry: wire::Entry {
                source: String::new(),
                detail_type: String::new(),
                detail: String::new(),
            },
            size,
            ready_at,
            attempts: 0,
            since: ready_at,
        }
    }

    fn indices(flight: &InFlight<'_>) -> Vec<usize> {
        flight.entries.iter().map(|q| q.index).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_partial_call_waits_for_the_linger_a_full_one_does_not() {
        let queue = Queue::default();
        let now = Instant::now();
        let linger = Duration::from_millis(5);
        let a = Caller::new(3);
        queue.push(
            &a,
            (0..3).map(|i| queued(&a, i, 10, now + linger)).collect(),
        );
        assert!(queue.take(now, 1000, 8).is_none(), "3 entries wait");
        let b = Caller::new(22);
        queue.push(
            &b,
            (0..22).map(|i| queued(&b, i, 10, now + linger)).collect(),
        );
        let first = queue.take(now, 1000, 8).unwrap();
        let second = queue.take(now, 1000, 8).unwrap();
        let whose = |flight: &InFlight<'_>| -> Vec<(bool, usize)> {
            flight
                .entries
                .iter()
                .map(|q| (Arc::ptr_eq(&q.caller, &a), q.index))
                .collect()
        };
        let expected: Vec<(bool, usize)> = (0..3)
            .map(|i| (true, i))
            .chain((0..7).map(|i| (false, i)))
            .collect();
        assert_eq!(whose(&first), expected, "callers share a call");
        assert_eq!(indices(&second), (7..17).collect::<Vec<_>>());
        assert!(queue.take(now, 1000, 8).is_none(), "5 left wait");
        let last = queue.take(now + linger, 1000, 8).unwrap();
        assert_eq!(indices(&last), (17..22).collect::<Vec<_>>());
        // Dropped unanswered: each entry gets a retryable error.
        drop((first, second, last));
        assert!(a.is_done() && b.is_done());
        for r in a.results().into_iter().chain(b.results()) {
            assert_eq!(r.unwrap_err().code, "Cancelled");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn ten_entries_are_a_full_call_sent_at_once() {
        let queue = Queue::default();
        let now = Instant::now();
        let a = Caller::new(10);
        queue.push(
            &a,
            (0..10)
                .map(|i| queued(&a, i, 10, now + Duration::from_secs(1)))
                .collect(),
        );
        let call = queue.take(now, 1000, 8).unwrap();
        assert_eq!(indices(&call), (0..10).collect::<Vec<_>>());
    }

    #[tokio::test(start_paused = true)]
    async fn slots_bound_the_calls_in_flight_and_size_fills_a_call() {
        let queue = Queue::default();
        let now = Instant::now();
        let a = Caller::new(6);
        queue.push(&a, (0..6).map(|i| queued(&a, i, 400, now)).collect());
        let one = queue.take(now, 1000, 2).unwrap();
        assert_eq!(indices(&one), [0, 1], "two of 400 fit in 1000");
        let two = queue.take(now, 1000, 2).unwrap();
        assert!(queue.take(now, 1000, 2).is_none(), "both slots taken");
        drop(one);
        let three = queue.take(now, 1000, 2).unwrap();
        assert_eq!(indices(&two), [2, 3]);
        assert_eq!(indices(&three), [4, 5]);
    }

    #[tokio::test(start_paused = true)]
    async fn re_sends_wait_for_their_backoff_then_go_first() {
        let queue = Queue::default();
        let now = Instant::now();
        let a = Caller::new(3);
        queue.push(&a, vec![queued(&a, 0, 10, now + Duration::from_secs(1))]);
        queue.requeue(vec![
            queued(&a, 1, 10, now + Duration::from_millis(100)),
            queued(&a, 2, 10, now + Duration::from_millis(300)),
        ]);
        assert_eq!(a.next_due(now), Some(now + Duration::from_millis(100)));
        assert!(queue.take(now, 1000, 8).is_none());
        let call = queue
            .take(now + Duration::from_millis(100), 1000, 8)
            .unwrap();
        assert_eq!(
            indices(&call),
            [1, 0],
            "the due re-send first, the new entry joins"
        );
        drop(call);
        // Each due time is kept until passed, not only the earliest.
        assert_eq!(
            a.next_due(now + Duration::from_millis(100)),
            Some(now + Duration::from_millis(300))
        );
        let call = queue
            .take(now + Duration::from_millis(300), 1000, 8)
            .unwrap();
        assert_eq!(indices(&call), [2]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_forgotten_caller_leaves_the_others_queued() {
        let queue = Queue::default();
        let now = Instant::now();
        let (a, b) = (Caller::new(2), Caller::new(1));
        queue.push(&a, (0..2).map(|i| queued(&a, i, 10, now)).collect());
        queue.push(&b, vec![queued(&b, 0, 10, now)]);
        queue.forget(&a);
        let call = queue.take(now, 1000, 8).unwrap();
        assert_eq!(call.entries.len(), 1);
        assert!(Arc::ptr_eq(&call.entries[0].caller, &b));
    }
}
