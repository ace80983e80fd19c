//! The delete batcher: handled messages deleted in batches of up to 10, refused entries sent again.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::DeleteMessageBatchRequestEntry;
use aws_sdk_sqs::Client;
use tokio::sync::mpsc;

use super::report::Counters;
use super::settings::BATCH_FILL_WAIT;
use crate::retry::RetryPolicy;

/// A handled message to delete.
pub(super) struct Delete {
    pub(super) message_id: String,
    pub(super) receipt: String,
    /// DeleteMessageBatch calls that carried it so far.
    pub(super) attempts: u32,
}

/// How a refused delete is sent again: entries SQS failed on its side
/// (`SenderFault: false`, e.g. `InternalError`) and calls that failed after
/// the SDK's own retries, at most 4 sends in all, waiting up to 100, 200,
/// then 400 ms (full jitter) between them.
const DELETE_RETRY: RetryPolicy = RetryPolicy {
    max_attempts: 4,
    base_delay: Duration::from_millis(100),
    max_delay: Duration::from_secs(1),
    max_elapsed: Duration::from_secs(5),
};

/// Deletes handled messages in batches of up to 10: whatever is waiting when
/// a call can go out goes in it, refused entries due for a re-send first.
/// After the channel closes (shutdown), the re-sends still due are made.
pub(super) async fn delete_loop(
    client: Client,
    queue_url: String,
    mut to_delete: mpsc::UnboundedReceiver<Delete>,
    counters: Arc<Counters>,
    handling: Arc<AtomicUsize>,
) {
    let mut retries: Vec<(tokio::time::Instant, Delete)> = Vec::new();
    let mut open = true;
    loop {
        let now = tokio::time::Instant::now();
        let mut batch = Vec::new();
        let mut i = 0;
        while i < retries.len() && batch.len() < 10 {
            if retries[i].0 <= now {
                batch.push(retries.swap_remove(i).1);
            } else {
                i += 1;
            }
        }
        if batch.is_empty() {
            let next_due = retries.iter().map(|(due, _)| *due).min();
            if !open && next_due.is_none() {
                break;
            }
            tokio::select! {
                d = to_delete.recv(), if open => match d {
                    Some(d) => batch.push(d),
                    None => {
                        open = false;
                        continue;
                    }
                },
                () = tokio::time::sleep_until(next_due.unwrap_or(now)), if next_due.is_some() => continue,
            }
        }
        while batch.len() < 10 {
            match to_delete.try_recv() {
                Ok(d) => batch.push(d),
                Err(_) => break,
            }
        }
        // Messages still being handled delete soon: wait a moment for them
        // rather than send a call of one or two.
        let fill_until = tokio::time::Instant::now() + BATCH_FILL_WAIT;
        while open && batch.len() < 10 && handling.load(Ordering::SeqCst) > 0 {
            tokio::select! {
                d = to_delete.recv() => match d {
                    Some(d) => batch.push(d),
                    None => open = false,
                },
                () = tokio::time::sleep_until(fill_until) => break,
            }
        }
        let now = tokio::time::Instant::now();
        for d in delete_batch(&client, &queue_url, batch, &counters).await {
            let due = now + DELETE_RETRY.delay(d.attempts + 1);
            retries.push((due, d));
        }
    }
}

/// One DeleteMessageBatch of `batch`; gives back the entries to send again.
async fn delete_batch(
    client: &Client,
    queue_url: &str,
    batch: Vec<Delete>,
    counters: &Counters,
) -> Vec<Delete> {
    let mut request = client.delete_message_batch().queue_url(queue_url);
    let mut sent: Vec<Option<Delete>> = Vec::with_capacity(batch.len());
    for (i, mut d) in batch.into_iter().enumerate() {
        match DeleteMessageBatchRequestEntry::builder()
            .id(i.to_string())
            .receipt_handle(&d.receipt)
            .build()
        {
            Ok(entry) => {
                request = request.entries(entry);
                d.attempts += 1;
                sent.push(Some(d));
            }
            Err(e) => {
                Counters::add(&counters.delete_failed, 1);
                tracing::error!(message_id = %d.message_id, error = %e, "cannot build the delete entry");
                sent.push(None);
            }
        }
    }
    let mut again = Vec::new();
    let mut give_up = |d: Delete, why: &str| {
        if d.attempts < DELETE_RETRY.max_attempts {
            tracing::debug!(message_id = %d.message_id, attempts = d.attempts, reason = why, "delete refused: sending it again");
            again.push(d);
            None
        } else {
            Counters::add(&counters.delete_failed, 1);
            Some(d)
        }
    };
    match request.send().await {
        Ok(out) => {
            Counters::add(&counters.deleted, out.successful().len() as u64);
            for failed in out.failed() {
                let Some(d) = failed
                    .id()
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| sent.get_mut(i))
                    .and_then(Option::take)
                else {
                    tracing::warn!(
                        id = failed.id(),
                        code = failed.code(),
                        "DeleteMessageBatch failed an entry it was not sent"
                    );
                    continue;
                };
                let (code, message) = (failed.code(), failed.message().unwrap_or_default());
                let d = if failed.sender_fault() {
                    // Permanent (e.g. `ReceiptHandleIsInvalid`): sending it again changes nothing.
                    Counters::add(&counters.delete_failed, 1);
                    d
                } else {
                    match give_up(d, code) {
                        Some(d) => d,
                        None => continue,
                    }
                };
                tracing::warn!(
                    message_id = %d.message_id,
                    attempts = d.attempts,
                    code,
                    message,
                    sender_fault = failed.sender_fault(),
                    "delete refused: SQS delivers the message again (deduplication skips the handlers that succeeded)"
                );
            }
        }
        Err(e) => {
            let error = DisplayErrorContext(&e).to_string();
            let mut failed = 0;
            for d in sent.into_iter().flatten() {
                if give_up(d, &error).is_some() {
                    failed += 1;
                }
            }
            if failed > 0 {
                tracing::warn!(
                    messages = failed,
                    attempts = DELETE_RETRY.max_attempts,
                    %error,
                    "DeleteMessageBatch failed: SQS delivers these messages again"
                );
            }
        }
    }
    again
}
