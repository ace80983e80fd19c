//! [`SqsConsumer`]: the queue check, the receive loop, handling with visibility renewed, shutdown.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName, QueueAttributeName};
use aws_sdk_sqs::Client;
use futures_util::Stream;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::delete::{delete_loop, Delete};
use super::error::ConsumerError;
use super::report::{ConsumeReport, Counters};
use super::settings::{ConsumerSettings, BATCH_FILL_WAIT};
use super::signal::{os_signals, watch};
use crate::consumer::batch::{self, queue_name_of_url, Decoded, Parent};
use crate::consumer::{Processed, Processor};
use crate::sdk_error::{classify, describe, is_access_denied, Fault};

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

/// A ReceiveMessage that failed: its one-line text and fault.
#[derive(Debug)]
struct ReceiveFailure {
    text: String,
    fault: Fault,
}

/// An SQS consumer running the bus's handlers. See the
/// [module docs](super).
#[derive(Clone)]
pub struct SqsConsumer {
    pub(super) client: Client,
    pub(super) queue_url: String,
    pub(super) processor: Processor,
    pub(super) settings: ConsumerSettings,
    pub(super) counters: Arc<Counters>,
    pub(super) observer: Option<Observer>,
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

impl SqsConsumer {
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
    /// [`SqsConsumerBuilder::build`](super::SqsConsumerBuilder::build) does unless told not to).
    ///
    /// # Errors
    ///
    /// [`ConsumerError::QueueNotFound`] when the queue does not exist,
    /// [`ConsumerError::QueueAccessDenied`] when the credentials may not use
    /// it, [`ConsumerError::Check`] when the call failed otherwise (network,
    /// no credentials).
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
        match classify(&err, QUEUE_GONE_CODES) {
            Fault::Gone => Err(ConsumerError::QueueNotFound { queue_url, message }),
            _ if is_access_denied(&err) => {
                Err(ConsumerError::QueueAccessDenied { queue_url, message })
            }
            _ => Err(ConsumerError::Check {
                queue_url,
                message,
                source: Box::new(err),
            }),
        }
    }

    /// Runs until SIGTERM or ctrl-c, then shuts down gracefully (in-flight
    /// messages finish within the shutdown timeout); a second SIGTERM or
    /// ctrl-c stops at once. As [`run`](Self::run), it stops by itself on
    /// an error retrying cannot fix.
    ///
    /// # Errors
    ///
    /// As [`run`](Self::run).
    pub async fn run_until_signal(&self) -> Result<ConsumeReport, ConsumerError> {
        self.run_until_signals(os_signals()).await
    }

    /// [`run_until_signal`](Self::run_until_signal) with the signals from
    /// `signals` instead of the operating system's: the first item shuts
    /// down gracefully, the second stops at once (in-flight messages
    /// abandoned and deletes not yet sent dropped: SQS delivers those
    /// messages again). For a program that handles its signals itself, and
    /// for tests.
    ///
    /// # Errors
    ///
    /// As [`run`](Self::run).
    pub async fn run_until_signals(
        &self,
        signals: impl Stream<Item = ()> + Send + 'static,
    ) -> Result<ConsumeReport, ConsumerError> {
        let shutdown = CancellationToken::new();
        let stop_now = CancellationToken::new();
        let watcher = tokio::spawn(watch(signals, shutdown.clone(), stop_now.clone()));
        let report = self.run_with_stop(shutdown, stop_now).await;
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
    ///
    /// # Errors
    ///
    /// [`ConsumerError::Stopped`], when ReceiveMessage failed with an error
    /// retrying cannot fix.
    pub async fn run(&self, shutdown: CancellationToken) -> Result<ConsumeReport, ConsumerError> {
        self.run_with_stop(shutdown, CancellationToken::new()).await
    }

    /// [`run`](Self::run), which also stops at once when `stop_now` is
    /// cancelled, during the graceful shutdown or before it: in-flight
    /// messages are abandoned (counted in [`ConsumeReport::abandoned`]) and
    /// deletes not yet sent are dropped; SQS delivers those messages again
    /// (with deduplication, the handlers that succeeded are skipped).
    ///
    /// # Errors
    ///
    /// As [`run`](Self::run).
    pub async fn run_with_stop(
        &self,
        shutdown: CancellationToken,
        stop_now: CancellationToken,
    ) -> Result<ConsumeReport, ConsumerError> {
        let span = tracing::info_span!("consume", queue = %self.queue_url);
        self.run_inner(shutdown, stop_now).instrument(span).await
    }

    async fn run_inner(
        &self,
        shutdown: CancellationToken,
        stop_now: CancellationToken,
    ) -> Result<ConsumeReport, ConsumerError> {
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
                () = either(&shutdown, &stop_now) => break,
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
                    () = either(&shutdown, &stop_now) => break,
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
                () = either(&shutdown, &stop_now) => break,
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
                        Fault::Gone => {
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
                        () = either(&shutdown, &stop_now) => break,
                        () = tokio::time::sleep(pause) => {}
                    }
                    pause = (pause * 2).min(Duration::from_secs(20));
                    continue;
                }
            };
            Counters::add(&self.counters.received, messages.len() as u64);
            let (span, messages) = self.batch(messages);
            for ((message, decoded), permit) in messages.into_iter().zip(held) {
                let this = self.clone();
                let deletes = deletes.clone();
                let handling = Handling::start(&handling);
                tasks.spawn(
                    async move {
                        this.handle(message, decoded, &deletes).await;
                        drop(handling);
                        drop(permit);
                    }
                    // The batch's span ends when its last message is done.
                    .instrument(span.clone()),
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
        let drained = tokio::select! {
            biased;
            () = stop_now.cancelled() => Err("stopping at once"),
            done = tokio::time::timeout(self.settings.shutdown_timeout, drain) => {
                done.map_err(|_| "shutdown timeout")
            }
        };
        if let Err(why) = drained {
            let abandoned = tasks.len();
            tracing::warn!(
                abandoned,
                timeout = ?self.settings.shutdown_timeout,
                "{why}: in-flight messages abandoned (not deleted: SQS delivers them again)"
            );
            Counters::add(&self.counters.abandoned, abandoned as u64);
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
        }
        drop(deletes);
        let mut deleter = deleter;
        let deleted = tokio::select! {
            done = &mut deleter => done,
            () = stop_now.cancelled() => {
                tracing::warn!("stopping at once: deletes not yet sent are dropped (SQS delivers those messages again)");
                deleter.abort();
                Ok(())
            }
        };
        if let Err(e) = deleted {
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
            .wait_time_seconds(whole_seconds(self.settings.wait_time))
            .visibility_timeout(whole_seconds(self.settings.visibility_timeout))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map(|out| out.messages.unwrap_or_default())
            .map_err(|e| ReceiveFailure {
                text: describe(&e),
                fault: classify(&e, QUEUE_GONE_CODES),
            })
    }

    /// One ReceiveMessage's messages, each with its body decoded, and the
    /// span they are handled in: `process {queue}`, the root of a trace of
    /// its own (the run's span lasts as long as the consumer runs), linked
    /// with the `otel` feature to each message's publish context.
    fn batch(&self, messages: Vec<Message>) -> (tracing::Span, Vec<(Message, Decoded)>) {
        let bus = self.processor.bus();
        let messages: Vec<_> = messages
            .into_iter()
            .map(|mut message| {
                let body = message.body.take().unwrap_or_default();
                let decoded = bus.receive(&body);
                (message, decoded)
            })
            .collect();
        let queue = self
            .processor
            .destination()
            .or_else(|| queue_name_of_url(&self.queue_url));
        let span = batch::span(queue, messages.iter().map(|(_, d)| d), Parent::Root);
        (span, messages)
    }

    /// Runs one message's handlers (its body decoded), extending its
    /// visibility while they run, and queues its delete when it is done
    /// with.
    async fn handle(
        &self,
        message: Message,
        decoded: Decoded,
        deletes: &mpsc::UnboundedSender<Delete>,
    ) {
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
        let processed = self
            .with_heartbeat(self.processor.process_decoded(decoded), &receipt)
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
        let visibility = whole_seconds(self.settings.visibility_timeout);
        let every = (self.settings.visibility_timeout / 2).max(Duration::from_millis(500));
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

/// Waits until `a` or `b` is cancelled.
async fn either(a: &CancellationToken, b: &CancellationToken) {
    tokio::select! {
        () = a.cancelled() => {}
        () = b.cancelled() => {}
    }
}

/// A duration the builder checked (at most 12 h) in the seconds SQS takes.
fn whole_seconds(d: Duration) -> i32 {
    i32::try_from(d.as_secs()).unwrap_or(i32::MAX)
}

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
pub(super) struct Handling(Arc<AtomicUsize>);

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
