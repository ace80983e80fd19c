//! Lambda adapters (feature `lambda`): the same handlers behind an AWS
//! Lambda function, with the event types of `aws_lambda_events` (no Lambda
//! runtime or HTTP server compiled here; the function's `main` brings
//! `lambda_runtime`).
//!
//! - [`handle_sqs_event`]: an SQS event source mapping with
//!   `ReportBatchItemFailures`. Each record is processed (concurrently, up to
//!   a limit); the response lists the message ids of the records to deliver
//!   again (a handler failed, or the body is not an event), so the handled
//!   ones are not.
//! - [`handle_eventbridge_event`]: a rule targeting the function directly.
//!   An `Err` makes Lambda retry the invocation (per the rule's retry
//!   policy and DLQ).
//!
//! The company example's function (`examples/src/bin/company_lambda.rs`,
//! which depends on `lambda_runtime`):
//!
//! ```ignore
//! use events_core::EventBus;
//! use events_eventbridge::lambda::{handle_sqs_event, SqsEvent};
//! use events_eventbridge::Processor;
//! use lambda_runtime::{service_fn, LambdaEvent};
//!
//! # async fn f() -> Result<(), lambda_runtime::Error> {
//! let processor = Processor::new(EventBus::builder().without_store().build()?);
//! lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| {
//!     let processor = processor.clone();
//!     async move { Ok::<_, lambda_runtime::Error>(handle_sqs_event(&processor, event.payload).await) }
//! }))
//! .await
//! # }
//! ```

use futures_util::stream::{self, StreamExt};
use tracing::Instrument;

pub use aws_lambda_events::event::eventbridge::EventBridgeEvent;
pub use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};

use crate::consumer::{batch, Processed, Processor};

/// How many records of one SQS event run at once.
pub const RECORD_CONCURRENCY: usize = 10;

/// Processes the records of an SQS event; the partial batch response lists
/// the message ids of those to deliver again.
///
/// The batch is processed in a `process_batch` span (a child of the span
/// current when called: the invocation's), exported as `process {queue}`
/// (the processor's destination, else the queue named by the records'
/// `eventSourceARN`), kind consumer, with `messaging.system = "aws_sqs"`
/// and `messaging.batch.message_count`. With the `otel` feature the span
/// links to each record's publish context (OpenTelemetry's messaging
/// conventions for a batch), while each record's own `process {event name}`
/// span stays a child of its publish span.
pub async fn handle_sqs_event(processor: &Processor, event: SqsEvent) -> SqsBatchResponse {
    let queue = processor.destination().or_else(|| {
        event
            .records
            .iter()
            .find_map(|r| r.event_source_arn.as_deref())
            .and_then(batch::queue_name_of_arn)
    });
    // Decoded first, so the batch's span knows every publisher before it
    // starts; the bodies go as they are read.
    let decoded: Vec<_> = event
        .records
        .iter()
        .map(|record| {
            processor
                .bus()
                .receive(record.body.as_deref().unwrap_or_default())
        })
        .collect();
    let span = batch::span(queue, decoded.iter(), batch::Parent::Current);
    let decoded: Vec<_> = event
        .records
        .into_iter()
        .map(|record| record.message_id)
        .zip(decoded)
        .collect();
    let results: Vec<(Option<String>, Processed)> = stream::iter(decoded)
        .map(|(message_id, decoded)| async move {
            (message_id, processor.process_decoded(decoded).await)
        })
        .buffered(RECORD_CONCURRENCY)
        .collect()
        .instrument(span)
        .await;
    let mut response = SqsBatchResponse::default();
    let mut failed = Vec::new();
    for (message_id, processed) in results {
        if processed.is_done() {
            continue;
        }
        match message_id {
            Some(id) => failed.push(id),
            None => tracing::warn!(
                ?processed,
                "a failed record without a message id cannot be reported for redelivery"
            ),
        }
    }
    response.set_failures(failed);
    response
}

/// Why a direct EventBridge invocation failed (Lambda retries it). Its
/// `Debug` is its message, as the Lambda runtime and `main` show it.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum LambdaError {
    /// The event is not one of ours (its reason, naming the field).
    #[error("not an event: {0}")]
    Undecodable(String),
    /// Handlers failed: each with its error.
    #[error("event `{name}` ({id}): {} handler(s) failed: {}", failures.len(), describe(failures))]
    HandlersFailed {
        /// The event name.
        name: String,
        /// The event id.
        id: String,
        /// Each failed handler and its error.
        failures: Vec<(String, String)>,
    },
}

impl std::fmt::Debug for LambdaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        events_core::error::write_chain(self, f)
    }
}

fn describe(failures: &[(String, String)]) -> String {
    failures
        .iter()
        .map(|(h, e)| format!("{h}: {e}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Processes an EventBridge event delivered to the function directly. `Ok`
/// on success, on no handler and on a duplicate.
///
/// # Errors
///
/// [`LambdaError::Undecodable`] when the event is not one of ours,
/// [`LambdaError::HandlersFailed`] when handlers failed (Lambda retries the
/// invocation).
pub async fn handle_eventbridge_event(
    processor: &Processor,
    event: &EventBridgeEvent,
) -> Result<Processed, LambdaError> {
    // Routing and decoding are the envelope's, as for an SQS body.
    let json = serde_json::to_string(event).map_err(|e| LambdaError::Undecodable(e.to_string()))?;
    match processor.process(&json).await {
        Processed::Undecodable { reason } => Err(LambdaError::Undecodable(reason)),
        Processed::Failed { name, id, failures } => {
            Err(LambdaError::HandlersFailed { name, id, failures })
        }
        done => Ok(done),
    }
}

#[cfg(test)]
mod tests {
    use super::LambdaError;

    /// The `Debug` (what `main` and `{:?}` show) is the sentence, not
    /// `HandlersFailed { .. }`.
    #[test]
    fn debug_is_the_message() {
        let err = LambdaError::HandlersFailed {
            name: "acme.shop.1.event.order.placed".to_owned(),
            id: "e-1".to_owned(),
            failures: vec![("notify".to_owned(), "smtp down".to_owned())],
        };
        assert_eq!(
            format!("{err:?}"),
            "event `acme.shop.1.event.order.placed` (e-1): 1 handler(s) failed: notify: smtp down"
        );
    }
}
