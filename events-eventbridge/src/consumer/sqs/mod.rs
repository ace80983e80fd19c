//! [`SqsConsumer`]: an SQS queue subscribed to the bus (by an EventBridge
//! rule), consumed with the same handlers the in-process bus runs.
//!
//! # What becomes of a message
//!
//! Long polling (up to 20 s, up to 10 messages a call), at most
//! `concurrency` messages in flight, each routed on `detail-type` to the
//! bus's handlers. A message whose handlers all succeeded (or that has no
//! handler here, or whose handlers all succeeded before, per the
//! deduplication table) is deleted, in batches of up to 10. An entry of the
//! batch's `Failed` list that SQS failed on its side (`SenderFault: false`),
//! or a whole call that failed after the SDK's retries, is sent again (at
//! most 4 sends, backoff of up to 100, 200, 400 ms); what is still refused,
//! and every sender-fault entry (e.g. `ReceiptHandleIsInvalid`), is logged
//! and counted in [`ConsumeReport::delete_failed`]. Such a message is
//! delivered again after its visibility timeout: with deduplication the
//! handlers that succeeded are skipped (it is a duplicate, then deleted),
//! without it they run again. A message whose handler failed,
//! or that is not an event, is left in the queue: SQS delivers it again after
//! its visibility timeout, and the queue's redrive policy moves it to a DLQ
//! after `maxReceiveCount` receives. While a handler runs, the message's
//! visibility is extended every half visibility timeout.
//!
//! # Calls
//!
//! Calls are kept full (SQS bills per request): while messages are being
//! handled, a receive waits up to 20 ms for the permits of a whole batch
//! rather than ask for the one message whose permit came back first, and a
//! delete waits up to 20 ms for the deletes of messages still being handled.
//! With `concurrency` at twice `max_messages`, a receive goes out while the
//! previous batch is handled.
//!
//! # Errors that stop it
//!
//! Mistakes that retrying cannot fix stop the consumer rather than leave it
//! polling for ever. [`SqsConsumerBuilder::build`] (and so
//! [`SqsConsumer::from_env`]) refuses an AWS configuration with no region
//! ([`ConsumerError::NoRegion`]) and checks the queue with one
//! GetQueueAttributes call: a queue that does not exist
//! ([`ConsumerError::QueueNotFound`]), or that the credentials may not use
//! ([`ConsumerError::QueueAccessDenied`]), fails the build, naming the queue
//! URL (the check is on by default; [`SqsConsumerBuilder::check_queue`] or
//! `EVENT_BUS_CHECK=false` turns it off, and the role then needs no
//! `sqs:GetQueueAttributes`). While running, a ReceiveMessage error that
//! retrying cannot fix is logged at error level: `QueueDoesNotExist` stops
//! [`SqsConsumer::run`] at once, and access, credential, region and address
//! errors (`AccessDenied`, `InvalidAddress`, a client with no region or no
//! credentials, ...) after [`PERMANENT_ERRORS_BEFORE_STOP`] in a row; `run`
//! then returns [`ConsumerError::Stopped`] with the reason. Other errors
//! (network, throttling, 5xx) are logged as warnings and retried with
//! backoff for as long as it takes.
//!
//! # Shutdown
//!
//! Shutdown ([`SqsConsumer::run`] with a cancelled token, or
//! [`SqsConsumer::run_until_signal`] on SIGTERM or ctrl-c): no new receive,
//! in-flight messages finish (within the shutdown timeout,
//! `EVENT_BUS_SHUTDOWN_TIMEOUT`, 30 s by default; after it they are
//! abandoned, not deleted, so SQS delivers them again), what succeeded is
//! deleted, and a [`ConsumeReport`] is returned. A second SIGTERM or ctrl-c
//! stops at once: in-flight messages are abandoned and deletes not yet sent
//! are dropped ([`SqsConsumer::run_with_stop`] does the same on a second
//! token, [`SqsConsumer::run_until_signals`] on signals of your own). A
//! receive cut short by the shutdown may have taken messages the consumer
//! never saw: SQS delivers them again after the visibility timeout.
//!
//! A handler that never returns is cut off by the bus's handler timeout
//! (`EVENT_BUS_HANDLER_TIMEOUT`, events-core): a failure, so its message is
//! left for redelivery.
//!
//! # Spans
//!
//! The messages of one ReceiveMessage are handled in a `process_batch`
//! span, exported as `process {queue}` (`messaging.batch.message_count`),
//! the root of a trace of its own for each receive (the consumer's `consume`
//! run span, which lasts as long as it runs, stays its parent for the log
//! lines only); with the `otel` feature it links to each message's publish
//! span, and each message's `process {event name}` span is a child of its
//! own publisher's. See [the crate docs](crate#consumer-spans).
//!
//! # Where things live
//!
//! [`SqsConsumer`] and its run loop in `consumer`, the builder and the
//! environment in `builder`, [`ConsumerSettings`] in `settings`,
//! [`ConsumerError`] in `error`, [`ConsumeReport`] in `report`, the delete
//! batcher in `delete`, the signals in `signal`.

mod builder;
mod consumer;
mod delete;
mod error;
mod report;
mod settings;
mod signal;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_shutdown;

pub use builder::SqsConsumerBuilder;
pub use consumer::{Observer, SqsConsumer, PERMANENT_ERRORS_BEFORE_STOP};
pub use error::ConsumerError;
pub use report::ConsumeReport;
pub use settings::{ConsumerSettings, DEFAULT_SHUTDOWN_TIMEOUT};
pub use tokio_util::sync::CancellationToken;
