//! [`ConsumeReport`]: what a consumer did, and the counters behind it.

use std::sync::atomic::{AtomicU64, Ordering};

/// What a consumer did, from start to shutdown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConsumeReport {
    /// Messages received.
    pub received: u64,
    /// Messages whose handlers all succeeded.
    pub handled: u64,
    /// Messages whose handlers had all succeeded before (deduplication).
    pub duplicates: u64,
    /// Messages with at least one failed handler (left for redelivery).
    pub failed: u64,
    /// Messages that are not events (left for the redrive policy).
    pub undecodable: u64,
    /// Events with no handler here (deleted).
    pub unrouted: u64,
    /// Messages deleted.
    pub deleted: u64,
    /// Handled messages whose delete was still refused after the re-sends
    /// (entries of DeleteMessageBatch's `Failed` list, or failed calls; a
    /// sender-fault entry such as `ReceiptHandleIsInvalid` is not sent
    /// again). SQS delivers these messages again after their visibility
    /// timeout: with deduplication the handlers that already succeeded are
    /// skipped (the message is then a duplicate and is deleted), without it
    /// they run again.
    pub delete_failed: u64,
    /// In-flight messages still running when the shutdown timeout passed
    /// (not deleted: SQS delivers them again).
    pub abandoned: u64,
    /// ReceiveMessage calls that failed (each retried after a pause, unless
    /// it stopped the consumer).
    pub receive_errors: u64,
}

#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) received: AtomicU64,
    pub(super) handled: AtomicU64,
    pub(super) duplicates: AtomicU64,
    pub(super) failed: AtomicU64,
    pub(super) undecodable: AtomicU64,
    pub(super) unrouted: AtomicU64,
    pub(super) deleted: AtomicU64,
    pub(super) delete_failed: AtomicU64,
    pub(super) abandoned: AtomicU64,
    pub(super) receive_errors: AtomicU64,
}

impl Counters {
    pub(super) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(super) fn report(&self) -> ConsumeReport {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ConsumeReport {
            received: get(&self.received),
            handled: get(&self.handled),
            duplicates: get(&self.duplicates),
            failed: get(&self.failed),
            undecodable: get(&self.undecodable),
            unrouted: get(&self.unrouted),
            deleted: get(&self.deleted),
            delete_failed: get(&self.delete_failed),
            abandoned: get(&self.abandoned),
            receive_errors: get(&self.receive_errors),
        }
    }
}
