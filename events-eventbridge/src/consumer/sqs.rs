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

use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName};
use aws_sdk_sqs::Client;
use events_core::{ConfigError, EventBus};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
pub use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{Processed, Processor};
use crate::dedup::Dedup;
use crate::retry::RetryPolicy;

/// Why a consumer could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConsumerError {
    /// A setting (an `EVENT_BUS_*` variable or builder value) cannot be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The SQLite deduplication table could not be opened.
    #[error(transparent)]
    Dedup(#[from] crate::dedup::DedupError),
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
    /// ReceiveMessage calls that failed (each retried after a pause).
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
}

impl std::fmt::Debug for SqsConsumerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqsConsumerBuilder")
            .field("queue_url", &self.queue_url)
            .field("dedup", &self.dedup.is_some())
            .field("settings", &self.settings)
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

    /// Checks the settings and builds the consumer of `bus`'s handlers.
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
            Some(url) if !url.trim().is_empty() => url,
            other => {
                return Err(config_error(
                    "EVENT_BUS_QUEUE_URL",
                    other.unwrap_or_default(),
                    "the URL of the SQS queue to consume",
                )
                .into())
            }
        };
        let client = match (self.client, self.sdk_config) {
            (Some(client), _) => client,
            (None, Some(config)) => Client::new(&crate::aws::with_http_client(&config)),
            (None, None) => Client::new(&crate::aws::load_sdk_config().await),
        };
        let mut processor = Processor::new(bus);
        if let Some(dedup) = self.dedup {
            processor = processor.with_dedup(dedup);
        }
        Ok(SqsConsumer {
            client,
            queue_url,
            processor,
            settings: self.settings,
            counters: Arc::default(),
            observer: self.observer,
        })
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
    ///
    /// and the standard AWS chain (`AWS_REGION`, credentials,
    /// `AWS_ENDPOINT_URL`).
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

    /// Runs until SIGTERM or ctrl-c, then shuts down gracefully.
    pub async fn run_until_signal(&self) -> ConsumeReport {
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
    pub async fn run(&self, shutdown: CancellationToken) -> ConsumeReport {
        let span = tracing::info_span!("consume", queue = %self.queue_url);
        self.run_inner(shutdown).instrument(span).await
    }

    async fn run_inner(&self, shutdown: CancellationToken) -> ConsumeReport {
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
                    messages
                }
                Err(error) => {
                    Counters::add(&self.counters.receive_errors, 1);
                    tracing::warn!(%error, retry_in = ?pause, "ReceiveMessage failed");
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
        tracing::info!(?report, "consumer stopped");
        report
    }

    async fn receive(&self, n: usize) -> Result<Vec<Message>, String> {
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
            .map_err(|e| DisplayErrorContext(&e).to_string())
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
        let report = task.await.unwrap();
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
            .wait_seconds(0);
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
        task.await.unwrap()
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
