//! [`SqsConsumer`]: an SQS queue subscribed to the bus (by an EventBridge
//! rule), consumed with the same handlers the in-process bus runs.
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
//! Calls are kept full (SQS bills per request): while messages are being
//! handled, a receive waits up to 20 ms for the permits of a whole batch
//! rather than ask for the one message whose permit came back first, and a
//! delete waits up to 20 ms for the deletes of messages still being handled.
//! With `concurrency` at twice `max_messages`, a receive goes out while the
//! previous batch is handled.
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
//! Shutdown ([`SqsConsumer::run`] with a cancelled token, or
//! [`SqsConsumer::run_until_signal`] on SIGTERM or ctrl-c): no new receive,
//! in-flight messages finish (within the shutdown timeout; after it they are
//! abandoned, not deleted, so SQS delivers them again), what succeeded is
//! deleted, and a [`ConsumeReport`] is returned. A receive cut short by the
//! shutdown may have taken messages the consumer never saw: SQS delivers
//! them again after the visibility timeout.

mod builder;
mod consumer;
mod delete;
mod error;
mod report;
mod settings;
mod signal;
#[cfg(test)]
mod tests;

pub use builder::SqsConsumerBuilder;
pub use consumer::{Observer, SqsConsumer, PERMANENT_ERRORS_BEFORE_STOP};
pub use error::ConsumerError;
pub use report::ConsumeReport;
pub use settings::ConsumerSettings;
pub use tokio_util::sync::CancellationToken;
