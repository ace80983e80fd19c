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

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName, QueueAttributeName,
};
use aws_sdk_sqs::Client;
use events_core::{ConfigError, EventBus};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
pub use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{Processed, Processor};
use crate::dedup::Dedup;
use crate::retry::RetryPolicy;

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
    /// [`SqsConsumerBuilder::queue_url`]).
    #[error("EVENT_BUS_QUEUE_URL is not set: expected {QUEUE_URL_EXPECTED}")]
    NoQueueUrl,
    /// The SQLite deduplication table could not be opened.
    #[error(transparent)]
    Dedup(#[from] crate::dedup::DedupError),
    /// No AWS region: not in `AWS_REGION`, the profile, or the SDK
    /// configuration given (as [`crate::Error::NoRegion`] for the
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
    /// [`SqsConsumer::run`] stopped by itself: ReceiveMessage failed with an
    /// error that retrying cannot fix (the queue does not exist, access is
    /// denied, no region or credentials). In-flight messages were finished
    /// and deleted first; [`SqsConsumer::report`] has the counts.
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
const QUEUE_URL_EXPECTED: &str = "the URL of the SQS queue to consume, e.g. \
    `https://sqs.eu-west-1.amazonaws.com/123456789012/orders` (not its name or ARN)";

/// Consecutive ReceiveMessage errors that retrying cannot fix (access,
/// credentials, region, address) after which [`SqsConsumer::run`] stops with
/// [`ConsumerError::Stopped`]; with the backoff between them (100 ms
/// doubling, at most 20 s), about 45 s. `QueueDoesNotExist` stops it at
/// once.
pub const PERMANENT_ERRORS_BEFORE_STOP: u32 = 10;

/// Service error codes meaning the queue does not exist (the JSON and the
/// query protocol's names).
const QUEUE_GONE_CODES: &[&str] = &[
    "QueueDoesNotExist",
    "AWS.SimpleQueueService.NonExistentQueue",
];

/// Service error codes that retrying does not fix: access, credentials,
/// address, the queue's KMS key.
const PERMANENT_CODES: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "InvalidAddress",
    "InvalidSecurity",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "MissingAuthenticationToken",
    "IncompleteSignature",
    "KmsAccessDenied",
    "KMS.AccessDeniedException",
    "KmsDisabled",
    "KMS.DisabledException",
    "KmsNotFound",
    "KMS.NotFoundException",
];

/// Service error codes of access and credentials (the start-up check's
/// [`ConsumerError::QueueAccessDenied`]).
const ACCESS_CODES: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "MissingAuthenticationToken",
    "IncompleteSignature",
];

/// What retrying an SQS call can do about its error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// The queue does not exist.
    QueueGone,
    /// Retrying does not fix it (access, credentials, region, address).
    Permanent,
    /// It may pass (network, throttling, 5xx).
    Transient,
}

fn classify<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> Fault {
    match err {
        SdkError::ServiceError(_) => match err.code() {
            Some(code) if QUEUE_GONE_CODES.contains(&code) => Fault::QueueGone,
            Some(code) if PERMANENT_CODES.contains(&code) => Fault::Permanent,
            _ => Fault::Transient,
        },
        // The request could not be made: a bad URL or setting.
        SdkError::ConstructionFailure(_) => Fault::Permanent,
        // No region, no credentials (the SDK's own "other" failures carry
        // no retry kind) or a request the connector refuses; network
        // failures are `io` or `timeout`.
        SdkError::DispatchFailure(d) if d.is_user() || (d.is_other() && d.as_other().is_none()) => {
            Fault::Permanent
        }
        _ => Fault::Transient,
    }
}

/// One line for an SDK error: `code: message` for a service error (not the
/// SDK's Debug tree), else its chain of causes.
fn describe<E, R>(err: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    match err {
        SdkError::ServiceError(_) => match (err.code(), err.message()) {
            (Some(code), Some(message)) => format!("{code}: {message}"),
            (Some(code), None) => code.to_owned(),
            _ => crate::publisher::error_chain(err),
        },
        _ => crate::publisher::error_chain(err),
    }
}

/// A ReceiveMessage that failed: its one-line text and fault.
#[derive(Debug)]
struct ReceiveFailure {
    text: String,
    fault: Fault,
}

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
struct Counters {
    received: AtomicU64,
    handled: AtomicU64,
    duplicates: AtomicU64,
    failed: AtomicU64,
    undecodable: AtomicU64,
    unrouted: AtomicU64,
    deleted: AtomicU64,
    delete_failed: AtomicU64,
    abandoned: AtomicU64,
    receive_errors: AtomicU64,
}

impl Counters {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    fn report(&self) -> ConsumeReport {
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

/// The consumer's settings, with their defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConsumerSettings {
    /// Messages asked for per ReceiveMessage, 1 to 10 (`10`).
    pub max_messages: i32,
    /// Long-polling wait per ReceiveMessage in seconds, 0 to 20 (`20`).
    pub wait_seconds: i32,
    /// The visibility timeout asked for on receive, and renewed every half
    /// of it while a handler runs, in seconds, 1 to 43200 (`30`).
    pub visibility_timeout: i32,
    /// Messages in flight at most (`10`).
    pub concurrency: usize,
    /// How long a shutdown waits for in-flight messages (`30 s`).
    pub shutdown_timeout: Duration,
}

impl Default for ConsumerSettings {
    fn default() -> Self {
        ConsumerSettings {
            max_messages: 10,
            wait_seconds: 20,
            visibility_timeout: 30,
            concurrency: 10,
            shutdown_timeout: Duration::from_secs(30),
        }
    }
}

/// An SQS consumer running the bus's handlers. See the
/// [module docs](self).
#[derive(Clone)]
pub struct SqsConsumer {
    client: Client,
    queue_url: String,
    processor: Processor,
    settings: ConsumerSettings,
    counters: Arc<Counters>,
    observer: Option<Observer>,
}

/// A callback told of every message processed (metrics, tests).
pub type Observer = Arc<dyn Fn(&Processed) + Send + Sync>;

impl std::fmt::Debug for SqsConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqsConsumer")
            .field("queue_url", &self.queue_url)
            .field("processor", &self.processor)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Builds an [`SqsConsumer`].
#[derive(Default)]
pub struct SqsConsumerBuilder {
    client: Option<Client>,
    sdk_config: Option<aws_config::SdkConfig>,
    queue_url: Option<String>,
    dedup: Option<Arc<dyn Dedup>>,
    settings: ConsumerSettings,
    observer: Option<Observer>,
    /// `None`: the default, on.
    check_queue: Option<bool>,
}

impl std::fmt::Debug for SqsConsumerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqsConsumerBuilder")
            .field("queue_url", &self.queue_url)
            .field("dedup", &self.dedup.is_some())
            .field("settings", &self.settings)
            .field("check_queue", &self.check_queue.unwrap_or(true))
            .finish_non_exhaustive()
    }
}

fn config_error(var: &'static str, value: impl ToString, expected: &'static str) -> ConfigError {
    ConfigError {
        var,
        value: value.to_string(),
        expected,
    }
}

impl SqsConsumerBuilder {
    /// The queue's URL (required; `EVENT_BUS_QUEUE_URL` in [`SqsConsumer::from_env`]).
    pub fn queue_url(mut self, url: impl Into<String>) -> Self {
        self.queue_url = Some(url.into());
        self
    }

    /// The SQS client (default: one from the standard AWS chain).
    pub fn client(mut self, client: Client) -> Self {
        self.client = Some(client);
        self
    }

    /// The AWS configuration a client is built from, when no
    /// [`client`](Self::client) is given.
    pub fn sdk_config(mut self, config: &aws_config::SdkConfig) -> Self {
        self.sdk_config = Some(config.clone());
        self
    }

    /// Skips handlers that already succeeded for an event, per `dedup`.
    pub fn dedup(mut self, dedup: Arc<dyn Dedup>) -> Self {
        self.dedup = Some(dedup);
        self
    }

    /// Calls `observer` with what became of each message (after its
    /// handlers ran, before its delete): for metrics.
    pub fn on_processed(mut self, observer: impl Fn(&Processed) + Send + Sync + 'static) -> Self {
        self.observer = Some(Arc::new(observer));
        self
    }

    /// Messages per ReceiveMessage, 1 to 10.
    pub fn max_messages(mut self, n: i32) -> Self {
        self.settings.max_messages = n;
        self
    }

    /// Long-polling wait, 0 to 20 seconds.
    pub fn wait_seconds(mut self, seconds: i32) -> Self {
        self.settings.wait_seconds = seconds;
        self
    }

    /// The visibility timeout in seconds (renewed while a handler runs).
    pub fn visibility_timeout(mut self, seconds: i32) -> Self {
        self.settings.visibility_timeout = seconds;
        self
    }

    /// Messages in flight at most (at least 1).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.settings.concurrency = n;
        self
    }

    /// How long a shutdown waits for in-flight messages.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.settings.shutdown_timeout = timeout;
        self
    }

    /// Whether [`build`](Self::build) checks the queue with one
    /// GetQueueAttributes call (default `true`; `EVENT_BUS_CHECK=false` in
    /// [`SqsConsumer::from_env`]). The consumer's role then needs
    /// `sqs:GetQueueAttributes` on the queue.
    pub fn check_queue(mut self, check: bool) -> Self {
        self.check_queue = Some(check);
        self
    }

    /// Checks the settings and builds the consumer of `bus`'s handlers.
    ///
    /// Without a [`client`](Self::client), an AWS configuration with no
    /// region (`AWS_REGION`, the profile) is refused:
    /// [`ConsumerError::NoRegion`]. Unless [`check_queue`](Self::check_queue)
    /// is `false`, the queue is then checked with one GetQueueAttributes call:
    /// [`ConsumerError::QueueNotFound`], [`ConsumerError::QueueAccessDenied`]
    /// or [`ConsumerError::Check`] when it fails.
    pub async fn build(self, bus: EventBus) -> Result<SqsConsumer, ConsumerError> {
        let s = &self.settings;
        if !(1..=10).contains(&s.max_messages) {
            return Err(config_error("max_messages", s.max_messages, "1 to 10").into());
        }
        if !(0..=20).contains(&s.wait_seconds) {
            return Err(config_error("EVENT_BUS_WAIT_SECONDS", s.wait_seconds, "0 to 20").into());
        }
        if !(1..=43_200).contains(&s.visibility_timeout) {
            return Err(config_error(
                "EVENT_BUS_VISIBILITY_TIMEOUT",
                s.visibility_timeout,
                "1 to 43200 seconds",
            )
            .into());
        }
        if s.concurrency == 0 {
            return Err(config_error("EVENT_BUS_CONSUMER_CONCURRENCY", 0, "at least 1").into());
        }
        let queue_url = match self.queue_url {
            Some(url) if !url.trim().is_empty() => url.trim().to_owned(),
            _ => return Err(ConsumerError::NoQueueUrl),
        };
        if !(queue_url.starts_with("https://") || queue_url.starts_with("http://")) {
            return Err(config_error("EVENT_BUS_QUEUE_URL", queue_url, QUEUE_URL_EXPECTED).into());
        }
        // Without a region every call fails: a start-up error, not a
        // consumer polling for ever. (A client given is used as is.)
        let client_of = |config: &aws_config::SdkConfig| match config.region() {
            Some(_) => Ok(Client::new(config)),
            None => Err(ConsumerError::NoRegion),
        };
        let client = match (self.client, self.sdk_config) {
            (Some(client), _) => client,
            (None, Some(config)) => client_of(&crate::aws::with_http_client(&config))?,
            (None, None) => client_of(&crate::aws::load_sdk_config().await)?,
        };
        let mut processor = Processor::new(bus);
        if let Some(dedup) = self.dedup {
            processor = processor.with_dedup(dedup);
        }
        let consumer = SqsConsumer {
            client,
            queue_url,
            processor,
            settings: self.settings,
            counters: Arc::default(),
            observer: self.observer,
        };
        if self.check_queue.unwrap_or(true) {
            consumer.check_queue().await?;
        }
        Ok(consumer)
    }
}

fn env_number<T: std::str::FromStr>(
    var: &'static str,
    default: T,
    expected: &'static str,
) -> Result<T, ConfigError> {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => {
            v.trim().parse().map_err(|_| config_error(var, v, expected))
        }
        _ => Ok(default),
    }
}

impl SqsConsumer {
    /// A builder.
    pub fn builder() -> SqsConsumerBuilder {
        SqsConsumerBuilder::default()
    }

    /// The twelve-factor path, for `bus`'s handlers:
    ///
    /// | variable | meaning | default |
    /// | --- | --- | --- |
    /// | `EVENT_BUS_QUEUE_URL` | the queue (required) | |
    /// | `EVENT_BUS_CONSUMER_CONCURRENCY` | messages in flight | `10` |
    /// | `EVENT_BUS_WAIT_SECONDS` | long-polling wait, 0 to 20 | `20` |
    /// | `EVENT_BUS_VISIBILITY_TIMEOUT` | seconds, renewed while a handler runs | `30` |
    /// | `EVENT_BUS_DEDUP` | `none`, `memory` or `sqlite` | `none` |
    /// | `EVENT_BUS_DEDUP_PATH` | the SQLite file of `sqlite` | `.events-bus/dedup.db` |
    /// | `EVENT_BUS_CHECK` | `false`: no GetQueueAttributes check of the queue at start-up | `true` for the consumer |
    ///
    /// and the standard AWS chain (`AWS_REGION`, credentials,
    /// `AWS_ENDPOINT_URL`). The queue check is on unless `EVENT_BUS_CHECK`
    /// is `false` (the publisher's DescribeEventBus check is off unless it is
    /// `true`): a consumer of a mistyped queue would otherwise start and
    /// handle nothing.
    pub async fn from_env(bus: EventBus) -> Result<SqsConsumer, ConsumerError> {
        SqsConsumer::builder_from_env()?.build(bus).await
    }

    /// The builder [`from_env`](Self::from_env) uses, to add to (an
    /// observer, a client).
    pub fn builder_from_env() -> Result<SqsConsumerBuilder, ConsumerError> {
        let mut builder = SqsConsumer::builder()
            .queue_url(std::env::var("EVENT_BUS_QUEUE_URL").unwrap_or_default())
            .concurrency(env_number(
                "EVENT_BUS_CONSUMER_CONCURRENCY",
                10,
                "a number of messages, at least 1",
            )?)
            .wait_seconds(env_number("EVENT_BUS_WAIT_SECONDS", 20, "0 to 20")?)
            .visibility_timeout(env_number(
                "EVENT_BUS_VISIBILITY_TIMEOUT",
                30,
                "1 to 43200 seconds",
            )?);
        if let Some(v) = std::env::var("EVENT_BUS_CHECK")
            .ok()
            .filter(|v| !v.trim().is_empty())
        {
            builder = builder.check_queue(events_core::config::parse_bool("EVENT_BUS_CHECK", &v)?);
        }
        let dedup = std::env::var("EVENT_BUS_DEDUP").unwrap_or_default();
        match dedup.trim().to_ascii_lowercase().as_str() {
            "" | "none" | "off" => {}
            "memory" => builder = builder.dedup(Arc::new(crate::dedup::MemoryDedup::default())),
            #[cfg(feature = "sqlite")]
            "sqlite" => {
                let path = std::env::var("EVENT_BUS_DEDUP_PATH")
                    .ok()
                    .filter(|p| !p.trim().is_empty())
                    .unwrap_or_else(|| ".events-bus/dedup.db".to_owned());
                if let Some(parent) = std::path::Path::new(&path).parent() {
                    if !parent.as_os_str().is_empty() {
                        let _ = std::fs::create_dir_all(parent);
                    }
                }
                builder = builder.dedup(Arc::new(crate::dedup::SqliteDedup::open(&path)?));
            }
            _ => {
                return Err(config_error(
                    "EVENT_BUS_DEDUP",
                    dedup,
                    "`none`, `memory` or `sqlite` (with the `sqlite` feature)",
                )
                .into())
            }
        }
        Ok(builder)
    }

    /// The settings in force.
    pub fn settings(&self) -> &ConsumerSettings {
        &self.settings
    }

    /// The queue consumed.
    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }

    /// The counts so far (of every run of this consumer and its clones).
    pub fn report(&self) -> ConsumeReport {
        self.counters.report()
    }

    /// Checks the queue with one GetQueueAttributes call (what
    /// [`SqsConsumerBuilder::build`] does unless told not to).
    pub async fn check_queue(&self) -> Result<(), ConsumerError> {
        let checked = self
            .client
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .attribute_names(QueueAttributeName::VisibilityTimeout)
            .send()
            .await;
        let err = match checked {
            Ok(out) => {
                let visibility = out
                    .attributes
                    .as_ref()
                    .and_then(|a| a.get(&QueueAttributeName::VisibilityTimeout))
                    .cloned()
                    .unwrap_or_default();
                tracing::debug!(queue = %self.queue_url, visibility, "queue checked");
                return Ok(());
            }
            Err(err) => err,
        };
        let queue_url = self.queue_url.clone();
        let message = describe(&err);
        match (classify(&err), err.code()) {
            (Fault::QueueGone, _) => Err(ConsumerError::QueueNotFound { queue_url, message }),
            (_, Some(code)) if ACCESS_CODES.contains(&code) => {
                Err(ConsumerError::QueueAccessDenied { queue_url, message })
            }
            _ => Err(ConsumerError::Check {
                queue_url,
                message,
                source: Box::new(err),
            }),
        }
    }

    /// Runs until SIGTERM or ctrl-c, then shuts down gracefully; as
    /// [`run`](Self::run), it stops by itself on an error retrying cannot
    /// fix.
    pub async fn run_until_signal(&self) -> Result<ConsumeReport, ConsumerError> {
        let token = CancellationToken::new();
        let trigger = token.clone();
        let watcher = tokio::spawn(async move {
            shutdown_signal().await;
            tracing::info!("shutdown signal: finishing in-flight messages");
            trigger.cancel();
        });
        let report = self.run(token).await;
        watcher.abort();
        report
    }

    /// Receives and handles messages until `shutdown` is cancelled, then
    /// finishes in-flight messages (within the shutdown timeout), deletes
    /// what succeeded and returns the counts of this consumer.
    ///
    /// A ReceiveMessage error that retrying cannot fix is logged at error
    /// level; `QueueDoesNotExist` at once, or such errors
    /// [`PERMANENT_ERRORS_BEFORE_STOP`] times in a row, stop it the same way
    /// (in-flight messages finished and deleted), and it returns
    /// [`ConsumerError::Stopped`] saying why.
    pub async fn run(&self, shutdown: CancellationToken) -> Result<ConsumeReport, ConsumerError> {
        let span = tracing::info_span!("consume", queue = %self.queue_url);
        self.run_inner(shutdown).instrument(span).await
    }

    async fn run_inner(&self, shutdown: CancellationToken) -> Result<ConsumeReport, ConsumerError> {
        let permits = Arc::new(Semaphore::new(self.settings.concurrency));
        let (deletes, to_delete) = mpsc::unbounded_channel::<Delete>();
        // Messages being handled, whose deletes may come any moment.
        let handling = Arc::new(AtomicUsize::new(0));
        let deleter = tokio::spawn(
            delete_loop(
                self.client.clone(),
                self.queue_url.clone(),
                to_delete,
                Arc::clone(&self.counters),
                Arc::clone(&handling),
            )
            .in_current_span(),
        );
        let mut tasks = JoinSet::new();
        let mut pause = Duration::from_millis(100);
        // Receive errors retrying cannot fix, in a row; why it stopped.
        let mut permanent_in_a_row = 0_u32;
        let mut stopped_by: Option<String> = None;
        loop {
            while let Some(done) = tasks.try_join_next() {
                log_join(done);
            }
            let first = tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                permit = Arc::clone(&permits).acquire_owned() => match permit {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            let mut held = vec![first];
            let want = usize::try_from(self.settings.max_messages)
                .unwrap_or(10)
                .min(self.settings.concurrency);
            take_free(&permits, &mut held, want);
            let busy = self
                .settings
                .concurrency
                .saturating_sub(permits.available_permits() + held.len());
            if held.len() < want && busy > 0 {
                // Messages are being handled: give them a moment to finish so
                // this receive asks for a full batch (fewer calls, and SQS
                // bills per request) instead of the one permit freed first.
                let missing = u32::try_from(want - held.len()).unwrap_or(u32::MAX);
                let more = tokio::select! {
                    biased;
                    () = shutdown.cancelled() => break,
                    more = tokio::time::timeout(BATCH_FILL_WAIT, Arc::clone(&permits).acquire_many_owned(missing)) => more,
                };
                if let Ok(Ok(mut more)) = more {
                    while let Some(one) = more.split(1) {
                        held.push(one);
                    }
                }
                take_free(&permits, &mut held, want);
            }
            let received = tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                r = self.receive(held.len()) => r,
            };
            let messages = match received {
                Ok(messages) => {
                    pause = Duration::from_millis(100);
                    permanent_in_a_row = 0;
                    messages
                }
                Err(ReceiveFailure { text: error, fault }) => {
                    Counters::add(&self.counters.receive_errors, 1);
                    match fault {
                        Fault::QueueGone => {
                            tracing::error!(%error, "ReceiveMessage failed: the queue does not exist; stopping");
                            stopped_by = Some(format!(
                                "ReceiveMessage failed with {error}: the queue does not exist \
                                 (create it, or set EVENT_BUS_QUEUE_URL to the URL of an existing queue)"
                            ));
                            break;
                        }
                        Fault::Permanent => {
                            permanent_in_a_row += 1;
                            if permanent_in_a_row >= PERMANENT_ERRORS_BEFORE_STOP {
                                tracing::error!(
                                    %error, in_a_row = permanent_in_a_row,
                                    "ReceiveMessage failed with an error retrying does not fix; stopping"
                                );
                                stopped_by = Some(format!(
                                    "ReceiveMessage failed {permanent_in_a_row} times in a row with an error \
                                     retrying does not fix, last: {error} (check the consumer's region, \
                                     credentials and IAM: sqs:ReceiveMessage, sqs:DeleteMessage, \
                                     sqs:ChangeMessageVisibility on the queue)"
                                ));
                                break;
                            }
                            tracing::error!(
                                %error, in_a_row = permanent_in_a_row,
                                stop_after = PERMANENT_ERRORS_BEFORE_STOP, retry_in = ?pause,
                                "ReceiveMessage failed with an error retrying does not fix \
                                 (access, credentials, region or address)"
                            );
                        }
                        Fault::Transient => {
                            tracing::warn!(%error, retry_in = ?pause, "ReceiveMessage failed");
                        }
                    }
                    drop(held);
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(pause) => {}
                    }
                    pause = (pause * 2).min(Duration::from_secs(20));
                    continue;
                }
            };
            Counters::add(&self.counters.received, messages.len() as u64);
            for (message, permit) in messages.into_iter().zip(held) {
                let this = self.clone();
                let deletes = deletes.clone();
                let handling = Handling::start(&handling);
                tasks.spawn(
                    async move {
                        this.handle(message, &deletes).await;
                        drop(handling);
                        drop(permit);
                    }
                    .in_current_span(),
                );
            }
        }
        let in_flight = tasks.len();
        if in_flight > 0 {
            tracing::info!(in_flight, "stopping: finishing in-flight messages");
        }
        let drain = async {
            while let Some(done) = tasks.join_next().await {
                log_join(done);
            }
        };
        if tokio::time::timeout(self.settings.shutdown_timeout, drain)
            .await
            .is_err()
        {
            let abandoned = tasks.len();
            tracing::warn!(
                abandoned,
                timeout = ?self.settings.shutdown_timeout,
                "shutdown timeout: in-flight messages abandoned (not deleted: SQS delivers them again)"
            );
            Counters::add(&self.counters.abandoned, abandoned as u64);
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
        }
        drop(deletes);
        if let Err(e) = deleter.await {
            tracing::error!(error = %e, "the delete task failed");
        }
        let report = self.report();
        match stopped_by {
            None => {
                tracing::info!(?report, "consumer stopped");
                Ok(report)
            }
            Some(reason) => {
                tracing::error!(?report, %reason, "consumer stopped by an error retrying cannot fix");
                Err(ConsumerError::Stopped {
                    queue_url: self.queue_url.clone(),
                    reason,
                })
            }
        }
    }

    async fn receive(&self, n: usize) -> Result<Vec<Message>, ReceiveFailure> {
        let n = i32::try_from(n).unwrap_or(10).clamp(1, 10);
        self.client
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(n)
            .wait_time_seconds(self.settings.wait_seconds)
            .visibility_timeout(self.settings.visibility_timeout)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map(|out| out.messages.unwrap_or_default())
            .map_err(|e| ReceiveFailure {
                text: describe(&e),
                fault: classify(&e),
            })
    }

    /// Runs one message's handlers, extending its visibility while they run,
    /// and queues its delete when it is done with.
    async fn handle(&self, message: Message, deletes: &mpsc::UnboundedSender<Delete>) {
        let message_id = message.message_id.unwrap_or_default();
        let receives = message
            .attributes
            .as_ref()
            .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
            .cloned()
            .unwrap_or_default();
        let Some(receipt) = message.receipt_handle else {
            tracing::warn!(message_id, "message without a receipt handle: skipped");
            return;
        };
        let body = message.body.unwrap_or_default();
        let processed = self
            .with_heartbeat(self.processor.process(&body), &receipt)
            .await;
        let c = &self.counters;
        match &processed {
            Processed::Handled { .. } => Counters::add(&c.handled, 1),
            Processed::Duplicate { .. } => Counters::add(&c.duplicates, 1),
            Processed::Unrouted { .. } => Counters::add(&c.unrouted, 1),
            Processed::Failed { name, id, failures } => {
                Counters::add(&c.failed, 1);
                let handlers: Vec<&str> = failures.iter().map(|(h, _)| h.as_str()).collect();
                tracing::warn!(
                    message_id, event = %name, id = %id, receives, handlers = ?handlers,
                    "not deleted: a handler failed; SQS delivers it again (then the DLQ)"
                );
            }
            Processed::Undecodable { reason } => {
                Counters::add(&c.undecodable, 1);
                tracing::warn!(
                    message_id, receives, %reason,
                    "not deleted: not an event; the queue's redrive policy moves it to the DLQ"
                );
            }
        }
        if let Some(observer) = &self.observer {
            observer(&processed);
        }
        if processed.is_done() {
            let _ = deletes.send(Delete {
                message_id,
                receipt,
                attempts: 0,
            });
        }
    }

    async fn with_heartbeat<F: std::future::Future>(&self, work: F, receipt: &str) -> F::Output {
        let visibility = self.settings.visibility_timeout;
        let every = Duration::from_millis(u64::try_from(visibility).unwrap_or(30) * 500)
            .max(Duration::from_millis(500));
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(work);
        loop {
            tokio::select! {
                out = &mut work => return out,
                _ = ticks.tick() => {
                    let extended = self
                        .client
                        .change_message_visibility()
                        .queue_url(&self.queue_url)
                        .receipt_handle(receipt)
                        .visibility_timeout(visibility)
                        .send()
                        .await;
                    match extended {
                        Ok(_) => tracing::debug!(seconds = visibility, "visibility extended"),
                        Err(e) => tracing::warn!(error = %DisplayErrorContext(&e), "could not extend the visibility: the message may be delivered again while its handler runs"),
                    }
                }
            }
        }
    }
}

/// How long a receive waits for the permits of a full batch while messages
/// are being handled, and a delete for a full batch while deletes may still
/// come: a fuller call instead of several small ones.
const BATCH_FILL_WAIT: Duration = Duration::from_millis(20);

/// Takes free permits until `held` has `want`.
fn take_free(permits: &Arc<Semaphore>, held: &mut Vec<OwnedSemaphorePermit>, want: usize) {
    while held.len() < want {
        match Arc::clone(permits).try_acquire_owned() {
            Ok(p) => held.push(p),
            Err(_) => break,
        }
    }
}

/// Counts one message being handled, until dropped (aborted tasks too).
struct Handling(Arc<AtomicUsize>);

impl Handling {
    fn start(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Handling(Arc::clone(count))
    }
}

impl Drop for Handling {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn log_join(done: Result<(), tokio::task::JoinError>) {
    if let Err(e) = done {
        if e.is_panic() {
            tracing::error!(error = %e, "a message task panicked");
        }
    }
}

struct Delete {
    message_id: String,
    receipt: String,
    /// DeleteMessageBatch calls that carried it so far.
    attempts: u32,
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
async fn delete_loop(
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

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for SIGTERM: ctrl-c only");
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use aws_sdk_sqs::operation::delete_message_batch::DeleteMessageBatchOutput;
    use aws_sdk_sqs::operation::receive_message::ReceiveMessageOutput;
    use aws_sdk_sqs::types::{BatchResultErrorEntry, DeleteMessageBatchResultEntry};
    use aws_smithy_mocks::{mock, RuleMode};
    use events_core::{DomainEvent, Event, RawEvent};

    use super::*;

    #[derive(DomainEvent, Debug, Clone)]
    #[event(
        company = "acme",
        service = "shop",
        version = 1,
        resource = "order",
        action = "placed"
    )]
    struct OrderPlaced {
        total: u64,
    }

    fn body(total: u64) -> String {
        let raw = RawEvent::from_event(&Event::new(OrderPlaced { total })).unwrap();
        format!(
            r#"{{"version":"0","id":"x","detail-type":"{}","source":"acme.shop","detail":{}}}"#,
            raw.name,
            events_core::wire::encode_detail(&raw)
        )
    }

    /// A `Failed` entry of DeleteMessageBatch (which moto never returns) is
    /// counted and logged; the other entries of the batch are deleted.
    #[tokio::test]
    async fn a_failed_entry_of_delete_message_batch_is_counted_not_taken_as_deleted() {
        let messages: Vec<Message> = (0..3)
            .map(|i| {
                Message::builder()
                    .message_id(format!("m{i}"))
                    .receipt_handle(format!("r{i}"))
                    .body(body(i))
                    .build()
            })
            .collect();
        let receive = mock!(Client::receive_message)
            .sequence()
            .output(move || {
                ReceiveMessageOutput::builder()
                    .set_messages(Some(messages.clone()))
                    .build()
            })
            .output(|| ReceiveMessageOutput::builder().build())
            .repeatedly()
            .build();
        let delete = mock!(Client::delete_message_batch).then_compute_output(|input| {
            let mut out = DeleteMessageBatchOutput::builder()
                .set_failed(Some(Vec::new()))
                .set_successful(Some(Vec::new()));
            for entry in input.entries() {
                if entry.receipt_handle() == "r1" {
                    out = out.failed(
                        BatchResultErrorEntry::builder()
                            .id(entry.id())
                            .code("ReceiptHandleIsInvalid")
                            .sender_fault(true)
                            .build()
                            .unwrap(),
                    );
                } else {
                    out = out.successful(
                        DeleteMessageBatchResultEntry::builder()
                            .id(entry.id())
                            .build()
                            .unwrap(),
                    );
                }
            }
            out.build().unwrap()
        });
        let client = Client::from_conf(
            aws_sdk_sqs::Config::builder()
                .with_test_defaults()
                .http_client(aws_smithy_mocks::create_mock_http_client())
                .interceptor(
                    aws_smithy_mocks::MockResponseInterceptor::new()
                        .rule_mode(RuleMode::MatchAny)
                        .with_rule(&receive)
                        .with_rule(&delete),
                )
                .build(),
        );
        let bus = EventBus::builder()
            .without_store()
            .discover(false)
            .register_handler_named::<OrderPlaced, _>("ok", Succeeds)
            .build()
            .unwrap();
        let consumer = SqsConsumer::builder()
            .client(client)
            .queue_url("https://sqs.us-east-1.amazonaws.com/1/q")
            .wait_seconds(0)
            .check_queue(false)
            .build(bus)
            .await
            .unwrap();
        let token = CancellationToken::new();
        let task = tokio::spawn({
            let consumer = consumer.clone();
            let token = token.clone();
            async move { consumer.run(token).await }
        });
        for _ in 0..500 {
            let r = consumer.report();
            if r.deleted + r.delete_failed >= 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        token.cancel();
        let report = task.await.unwrap().unwrap();
        assert_eq!((report.received, report.handled), (3, 3));
        assert_eq!((report.deleted, report.delete_failed), (2, 1));
    }

    /// A client answering with `rules` (any order).
    fn mock_client(rules: &[&aws_smithy_mocks::Rule]) -> Client {
        let mut interceptor =
            aws_smithy_mocks::MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny);
        for rule in rules {
            interceptor = interceptor.with_rule(rule);
        }
        Client::from_conf(
            aws_sdk_sqs::Config::builder()
                .with_test_defaults()
                .region(aws_sdk_sqs::config::Region::new("us-east-1"))
                .http_client(aws_smithy_mocks::create_mock_http_client())
                .interceptor(interceptor)
                .build(),
        )
    }

    fn message(id: &str, receipt: &str, body: &str) -> Message {
        Message::builder()
            .message_id(id)
            .receipt_handle(receipt)
            .body(body)
            .build()
    }

    /// Runs a consumer of `bus` on `client` until `deleted + delete_failed`
    /// reaches `done`, then shuts it down.
    async fn consume_until(
        client: Client,
        bus: EventBus,
        dedup: Option<Arc<dyn Dedup>>,
        done: u64,
    ) -> ConsumeReport {
        let mut builder = SqsConsumer::builder()
            .client(client)
            .queue_url("https://sqs.us-east-1.amazonaws.com/1/q")
            .wait_seconds(0)
            .check_queue(false);
        if let Some(dedup) = dedup {
            builder = builder.dedup(dedup);
        }
        let consumer = builder.build(bus).await.unwrap();
        let token = CancellationToken::new();
        let task = tokio::spawn({
            let consumer = consumer.clone();
            let token = token.clone();
            async move { consumer.run(token).await }
        });
        for _ in 0..1000 {
            let r = consumer.report();
            if r.deleted + r.delete_failed >= done {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        token.cancel();
        task.await.unwrap().unwrap()
    }

    type Sends = Arc<std::sync::Mutex<Vec<Vec<String>>>>;

    /// A DeleteMessageBatch rule recording each call's receipt handles and
    /// failing an entry when `refuse(receipt, earlier sends of it)` gives
    /// `Some(sender_fault)`.
    fn delete_rule(
        sends: &Sends,
        refuse: impl Fn(&str, usize) -> Option<bool> + Send + Sync + 'static,
    ) -> aws_smithy_mocks::Rule {
        let sends = Arc::clone(sends);
        mock!(Client::delete_message_batch).then_compute_output(move |input| {
            let mut sends = sends.lock().unwrap();
            let mut out = DeleteMessageBatchOutput::builder()
                .set_failed(Some(Vec::new()))
                .set_successful(Some(Vec::new()));
            for entry in input.entries() {
                let receipt = entry.receipt_handle();
                let before = sends.iter().flatten().filter(|r| *r == receipt).count();
                out = match refuse(receipt, before) {
                    Some(sender_fault) => out.failed(
                        BatchResultErrorEntry::builder()
                            .id(entry.id())
                            .code(if sender_fault {
                                "ReceiptHandleIsInvalid"
                            } else {
                                "InternalError"
                            })
                            .sender_fault(sender_fault)
                            .build()
                            .unwrap(),
                    ),
                    None => out.successful(
                        DeleteMessageBatchResultEntry::builder()
                            .id(entry.id())
                            .build()
                            .unwrap(),
                    ),
                };
            }
            sends.push(
                input
                    .entries()
                    .iter()
                    .map(|e| e.receipt_handle().to_owned())
                    .collect(),
            );
            out.build().unwrap()
        })
    }

    fn sends_of(sends: &Sends, receipt: &str) -> usize {
        sends
            .lock()
            .unwrap()
            .iter()
            .flatten()
            .filter(|r| *r == receipt)
            .count()
    }

    /// An entry SQS failed on its side (`SenderFault: false`) is sent again
    /// and deleted; a sender-fault one (`ReceiptHandleIsInvalid`) is not sent
    /// again, and is counted.
    #[tokio::test]
    async fn a_delete_refused_on_the_server_side_is_sent_again_and_deleted() {
        let (b0, b1, b2) = (body(0), body(1), body(2));
        let receive = mock!(Client::receive_message)
            .sequence()
            .output(move || {
                ReceiveMessageOutput::builder()
                    .messages(message("m0", "r0", &b0))
                    .messages(message("m1", "r1", &b1))
                    .messages(message("m2", "r2", &b2))
                    .build()
            })
            .output(|| ReceiveMessageOutput::builder().build())
            .repeatedly()
            .build();
        let sends = Sends::default();
        let delete = delete_rule(&sends, |receipt, before| match receipt {
            "r1" if before == 0 => Some(false),
            "r2" => Some(true),
            _ => None,
        });
        let bus = EventBus::builder()
            .without_store()
            .discover(false)
            .register_handler_named::<OrderPlaced, _>("ok", Succeeds)
            .build()
            .unwrap();
        let report = consume_until(mock_client(&[&receive, &delete]), bus, None, 3).await;
        assert_eq!((report.received, report.handled), (3, 3), "{report:?}");
        assert_eq!((report.deleted, report.delete_failed), (2, 1), "{report:?}");
        assert_eq!(
            (
                sends_of(&sends, "r0"),
                sends_of(&sends, "r1"),
                sends_of(&sends, "r2")
            ),
            (1, 2, 1),
            "{sends:?}"
        );
    }

    /// An entry refused on every send is counted after 4 sends; SQS
    /// delivering the message again (a new receipt handle), deduplication
    /// skips the handler that succeeded and the duplicate is deleted.
    #[tokio::test]
    async fn a_delete_refused_on_every_send_is_counted_and_its_redelivery_is_a_duplicate() {
        let (b0, b1) = (body(0), body(1));
        let sends = Sends::default();
        let delete = delete_rule(&sends, |receipt, _| (receipt == "r1").then_some(false));
        // SQS delivers m1 again (a new receipt handle) once its visibility
        // timeout passes, here: after its first delete was refused.
        let receives = std::sync::atomic::AtomicUsize::new(0);
        let receive = mock!(Client::receive_message).then_compute_output({
            let sends = Arc::clone(&sends);
            move |_| {
                let mut out = ReceiveMessageOutput::builder();
                if receives.load(Ordering::SeqCst) == 0 {
                    receives.store(1, Ordering::SeqCst);
                    out = out
                        .messages(message("m0", "r0", &b0))
                        .messages(message("m1", "r1", &b1));
                } else if receives.load(Ordering::SeqCst) == 1 && sends_of(&sends, "r1") > 0 {
                    receives.store(2, Ordering::SeqCst);
                    out = out.messages(message("m1", "r1-again", &b1));
                }
                out.build()
            }
        });
        let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let bus = EventBus::builder()
            .without_store()
            .discover(false)
            .register_handler_named::<OrderPlaced, _>("counted", Counted(Arc::clone(&runs)))
            .build()
            .unwrap();
        let dedup: Arc<dyn Dedup> = Arc::new(crate::dedup::MemoryDedup::default());
        let report = consume_until(mock_client(&[&receive, &delete]), bus, Some(dedup), 3).await;
        assert_eq!(sends_of(&sends, "r1"), 4, "{sends:?}");
        assert_eq!(
            (report.received, report.handled, report.duplicates),
            (3, 2, 1),
            "{report:?}"
        );
        assert_eq!((report.deleted, report.delete_failed), (2, 1), "{report:?}");
        assert_eq!(sends_of(&sends, "r1-again"), 1);
        assert_eq!(runs.load(Ordering::SeqCst), 2, "m0 once, m1 once");
    }

    /// A DeleteMessageBatch call that fails (after the SDK's retries) is
    /// made again.
    #[tokio::test]
    async fn a_failed_delete_call_is_made_again() {
        let b0 = body(0);
        let receive = mock!(Client::receive_message)
            .sequence()
            .output(move || {
                ReceiveMessageOutput::builder()
                    .messages(message("m0", "r0", &b0))
                    .build()
            })
            .output(|| ReceiveMessageOutput::builder().build())
            .repeatedly()
            .build();
        let delete = mock!(Client::delete_message_batch)
            .sequence()
            .http_status(
                400,
                Some(
                    r#"{"__type":"com.amazonaws.sqs#QueueDoesNotExist","message":"gone for a moment"}"#
                        .to_owned(),
                ),
            )
            .output(|| {
                DeleteMessageBatchOutput::builder()
                    .set_failed(Some(Vec::new()))
                    .successful(DeleteMessageBatchResultEntry::builder().id("0").build().unwrap())
                    .build()
                    .unwrap()
            })
            .build();
        let bus = EventBus::builder()
            .without_store()
            .discover(false)
            .register_handler_named::<OrderPlaced, _>("ok", Succeeds)
            .build()
            .unwrap();
        let report = consume_until(mock_client(&[&receive, &delete]), bus, None, 1).await;
        assert_eq!((report.deleted, report.delete_failed), (1, 0), "{report:?}");
        assert_eq!(delete.num_calls(), 2);
    }

    fn bus() -> EventBus {
        EventBus::builder()
            .without_store()
            .discover(false)
            .register_handler_named::<OrderPlaced, _>("ok", Succeeds)
            .build()
            .unwrap()
    }

    /// A ReceiveMessage answer with HTTP 400 and the service error `code`.
    fn refused(code: &str) -> (u16, Option<String>) {
        (
            400,
            Some(format!(
                r#"{{"__type":"com.amazonaws.sqs#{code}","message":"refused: {code}"}}"#
            )),
        )
    }

    /// Runs a consumer (no start-up check) of `client` until it stops by
    /// itself, or for at most `limit` of (paused) time.
    async fn run_alone(client: Client, limit: Duration) -> Result<ConsumeReport, ConsumerError> {
        let consumer = SqsConsumer::builder()
            .client(client)
            .queue_url("https://sqs.us-east-1.amazonaws.com/1/q")
            .wait_seconds(0)
            .check_queue(false)
            .build(bus())
            .await
            .unwrap();
        let token = CancellationToken::new();
        let stopper = {
            let token = token.clone();
            tokio::spawn(async move {
                tokio::time::sleep(limit).await;
                token.cancel();
            })
        };
        let result = consumer.run(token).await;
        stopper.abort();
        result
    }

    /// Without a region the consumer is refused at build time, as the
    /// publisher is; no call is made.
    #[tokio::test]
    async fn an_aws_configuration_without_a_region_is_refused() {
        let config = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let err = SqsConsumer::builder()
            .sdk_config(&config)
            .queue_url("https://sqs.us-east-1.amazonaws.com/1/q")
            .build(bus())
            .await
            .unwrap_err();
        assert!(matches!(err, ConsumerError::NoRegion), "{err:?}");
        assert_eq!(
            format!("{err:?}"),
            "the SQS consumer needs an AWS region: set AWS_REGION (e.g. `eu-west-1`), \
             or a region in the AWS profile (AWS_PROFILE, ~/.aws/config)"
        );
    }

    /// `main() -> Result<(), Box<dyn Error>>` prints the `Debug`: the
    /// sentence, not `Config(..)`.
    #[test]
    fn debug_is_the_message() {
        let err = ConsumerError::from(config_error("EVENT_BUS_WAIT_SECONDS", 60, "0 to 20"));
        assert_eq!(
            format!("{err:?}"),
            "EVENT_BUS_WAIT_SECONDS=`60` is not valid: expected 0 to 20"
        );
        let err: Box<dyn std::error::Error> = Box::new(ConsumerError::Stopped {
            queue_url: "https://q".to_owned(),
            reason: "because".to_owned(),
        });
        assert_eq!(
            format!("{err:?}"),
            "stopped consuming SQS queue `https://q`: because"
        );
    }

    /// An unset queue URL says so; a queue name or ARN is not a URL.
    #[tokio::test]
    async fn a_missing_or_malformed_queue_url_is_refused_saying_which() {
        let err = SqsConsumer::builder()
            .client(mock_client(&[]))
            .queue_url("  ")
            .build(bus())
            .await
            .unwrap_err();
        assert_eq!(
            format!("{err:?}"),
            "EVENT_BUS_QUEUE_URL is not set: expected the URL of the SQS queue to consume, \
             e.g. `https://sqs.eu-west-1.amazonaws.com/123456789012/orders` (not its name or ARN)"
        );
        let err = SqsConsumer::builder()
            .client(mock_client(&[]))
            .build(bus())
            .await
            .unwrap_err();
        assert!(matches!(err, ConsumerError::NoQueueUrl), "{err:?}");
        let err = SqsConsumer::builder()
            .client(mock_client(&[]))
            .queue_url("arn:aws:sqs:eu-west-1:123456789012:orders")
            .build(bus())
            .await
            .unwrap_err();
        assert!(
            format!("{err:?}").starts_with(
                "EVENT_BUS_QUEUE_URL=`arn:aws:sqs:eu-west-1:123456789012:orders` is not valid: \
                 expected the URL of the SQS queue to consume"
            ),
            "{err:?}"
        );
    }

    /// AccessDenied on every receive: logged at error level, and after
    /// `PERMANENT_ERRORS_BEFORE_STOP` in a row `run` stops saying why. A
    /// receive that succeeds in between starts the count again.
    #[tokio::test(start_paused = true)]
    async fn receive_refused_with_access_denied_stops_the_consumer_after_a_bound() {
        let (status, body) = refused("AccessDenied");
        let mut rule = mock!(Client::receive_message).sequence();
        for _ in 0..PERMANENT_ERRORS_BEFORE_STOP - 1 {
            rule = rule.http_status(status, body.clone());
        }
        let receive = rule
            .output(|| ReceiveMessageOutput::builder().build())
            .http_status(status, body)
            .repeatedly()
            .build();
        let err = run_alone(mock_client(&[&receive]), Duration::from_secs(3600))
            .await
            .unwrap_err();
        let text = format!("{err:?}");
        assert!(matches!(err, ConsumerError::Stopped { .. }), "{text}");
        assert!(
            text.starts_with(
                "stopped consuming SQS queue `https://sqs.us-east-1.amazonaws.com/1/q`: \
                 ReceiveMessage failed 10 times in a row"
            ),
            "{text}"
        );
        assert!(
            text.contains("AccessDenied: refused: AccessDenied"),
            "{text}"
        );
        assert!(
            !text.contains("ServiceError {"),
            "no SDK Debug tree: {text}"
        );
        assert_eq!(
            receive.num_calls(),
            2 * PERMANENT_ERRORS_BEFORE_STOP as usize,
            "9 refused, 1 received (the count starts again), 10 refused"
        );
    }

    /// QueueDoesNotExist stops it at the first receive.
    #[tokio::test(start_paused = true)]
    async fn receive_of_a_queue_that_does_not_exist_stops_the_consumer_at_once() {
        let (status, body) = refused("QueueDoesNotExist");
        let receive = mock!(Client::receive_message)
            .sequence()
            .http_status(status, body)
            .repeatedly()
            .build();
        let err = run_alone(mock_client(&[&receive]), Duration::from_secs(3600))
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("QueueDoesNotExist"), "{text}");
        assert!(text.contains("the queue does not exist"), "{text}");
        assert_eq!(receive.num_calls(), 1);
    }

    /// An error that may pass (here `OverLimit`) is retried for as long as
    /// it takes: the consumer only stops when told to.
    #[tokio::test(start_paused = true)]
    async fn a_receive_error_that_may_pass_is_retried_without_stopping() {
        let (status, body) = refused("OverLimit");
        let receive = mock!(Client::receive_message)
            .sequence()
            .http_status(status, body)
            .repeatedly()
            .build();
        let report = run_alone(mock_client(&[&receive]), Duration::from_secs(600))
            .await
            .unwrap();
        assert!(
            report.receive_errors > u64::from(PERMANENT_ERRORS_BEFORE_STOP),
            "{report:?}"
        );
    }

    /// A client with no region (given as is, so `build` cannot refuse it):
    /// every receive fails before it is sent, and the consumer stops naming
    /// the region.
    #[tokio::test(start_paused = true)]
    async fn a_client_without_a_region_stops_the_consumer_naming_it() {
        let client = Client::from_conf(
            aws_sdk_sqs::Config::builder()
                .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
                .credentials_provider(aws_sdk_sqs::config::Credentials::for_tests())
                .http_client(aws_smithy_mocks::create_mock_http_client())
                .build(),
        );
        let err = run_alone(client, Duration::from_secs(3600))
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("10 times in a row"), "{text}");
        assert!(text.to_ascii_lowercase().contains("region"), "{text}");
    }

    struct Counted(Arc<std::sync::atomic::AtomicUsize>);

    impl events_core::Handler<OrderPlaced> for Counted {
        async fn handle(&self, _: &Event<OrderPlaced>) -> events_core::HandlerResult {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    struct Succeeds;

    impl events_core::Handler<OrderPlaced> for Succeeds {
        async fn handle(&self, _: &Event<OrderPlaced>) -> events_core::HandlerResult {
            Ok(())
        }
    }
}
