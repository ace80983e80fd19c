//! [`ConsumerError`]: why an SQS consumer could not be built, or stopped by itself.

use events_core::ConfigError;

/// Why a consumer could not be built, or stopped by itself. Its `Debug` is
/// its message (and causes), so `main() -> Result<(), Box<dyn Error>>` shows
/// the sentence.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum ConsumerError {
    /// A setting (an `EVENT_BUS_*` variable or builder value) cannot be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// No queue: `EVENT_BUS_QUEUE_URL` unset or empty (or no
    /// [`SqsConsumerBuilder::queue_url`](super::SqsConsumerBuilder::queue_url)).
    #[error("EVENT_BUS_QUEUE_URL is not set: expected {QUEUE_URL_EXPECTED}")]
    NoQueueUrl,
    /// The SQLite deduplication table could not be opened.
    #[error(transparent)]
    Dedup(#[from] crate::dedup::DedupError),
    /// No AWS region: not in `AWS_REGION`, the profile, or the SDK
    /// configuration given (as [`PublisherBuildError::NoRegion`](crate::PublisherBuildError::NoRegion) for the
    /// publisher).
    #[error(
        "the SQS consumer needs an AWS region: set AWS_REGION (e.g. `eu-west-1`), \
         or a region in the AWS profile (AWS_PROFILE, ~/.aws/config)"
    )]
    NoRegion,
    /// The start-up check found no such queue (`QueueDoesNotExist`).
    #[error(
        "SQS queue `{queue_url}` does not exist in this account and region \
         (GetQueueAttributes: {message}); create it, or set EVENT_BUS_QUEUE_URL \
         to the URL of an existing queue"
    )]
    QueueNotFound {
        /// The queue URL checked.
        queue_url: String,
        /// The service's code and message.
        message: String,
    },
    /// The start-up check was refused (`AccessDenied`, unknown or invalid
    /// credentials).
    #[error(
        "access to SQS queue `{queue_url}` was refused (GetQueueAttributes: {message}); \
         allow the consumer's role sqs:GetQueueAttributes, sqs:ReceiveMessage, \
         sqs:DeleteMessage and sqs:ChangeMessageVisibility on it \
         (or set EVENT_BUS_CHECK=false to skip this check)"
    )]
    QueueAccessDenied {
        /// The queue URL checked.
        queue_url: String,
        /// The service's code and message.
        message: String,
    },
    /// The start-up check could not be made (network, credentials, ...).
    #[error(
        "could not check SQS queue `{queue_url}` with GetQueueAttributes: {message} \
         (EVENT_BUS_CHECK=false skips this check)"
    )]
    Check {
        /// The queue URL checked.
        queue_url: String,
        /// The error, with its causes.
        message: String,
        /// The SDK's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// [`SqsConsumer::run`](super::SqsConsumer::run) stopped by itself: ReceiveMessage failed with an
    /// error that retrying cannot fix (the queue does not exist, access is
    /// denied, no region or credentials). In-flight messages were finished
    /// and deleted first; [`SqsConsumer::report`](super::SqsConsumer::report) has the counts.
    #[error("stopped consuming SQS queue `{queue_url}`: {reason}")]
    Stopped {
        /// The queue consumed.
        queue_url: String,
        /// Why, with what to do about it.
        reason: String,
    },
}

impl std::fmt::Debug for ConsumerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        events_core::error::write_chain(self, f)
    }
}

/// What `EVENT_BUS_QUEUE_URL` takes.
pub(super) const QUEUE_URL_EXPECTED: &str = "the URL of the SQS queue to consume, e.g. \
    `https://sqs.eu-west-1.amazonaws.com/123456789012/orders` (not its name or ARN)";
