//! The bus: publishes events, keeps them durable, and dispatches them to
//! handlers (SPEC §5–§7).
//!
//! # Dispatch
//!
//! All handlers of an event run, **one after another**: discovered handlers
//! first, ordered by their names (module path and function or type name, so
//! the order is the same in every build), then explicit ones in registration
//! order. In order,
//! not concurrently, because handlers of one event often touch the same rows
//! or services, logs then read in a stable order, and one event's handlers
//! never compete with each other for a connection pool. Publish with
//! `EVENT_BUS_ASYNC=true` (or [`EventBusBuilder::async_handlers`]) to take
//! handler time off the publisher's path; events then dispatch concurrently
//! with each other.
//!
//! A handler's `Err` or panic is isolated: it is logged with the event name,
//! id and handler name, reported in the [`PublishOutcome`], and the other
//! handlers still run. The bus stays usable.
//!
//! # Delivery
//!
//! `publish` returns `Ok` only once each event is delivered: stored durably
//! (local mode), or accepted by the remote bus or else stored (eventbridge
//! mode): an event refused for a reason that may pass (throttling, an outage)
//! waits in the failover store for replay ([`Delivery::FailedOver`]), one
//! refused for good (too large, access denied) is kept as a dead letter
//! ([`Delivery::DeadLettered`]). If an event can be neither, `publish`
//! returns [`BusError::NotDelivered`] naming it, and its handlers do not run.

use std::borrow::Cow;
use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::aggregate::{AnyEvent, Recorder};
use crate::config::{BusConfig, ConfigError, Mode};
use crate::envelope::{Event, EventId, RawEvent};
use crate::error::{DecodeError, EncodeError};
use crate::event::DomainEvent;
use crate::handler::{discovered_handlers, Handler, HandlerEntry};
use crate::publisher::{provider, PublishError, Publisher};
use crate::registry::{DuplicateEventName, EventTypes, SharedEvent};
use crate::store::{EventStore, MemoryStore, SqliteStore, StoreError, StoredEvent};

/// Why the bus could not be built or could not deliver.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// A configuration value is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Two types claim one event name.
    #[error(transparent)]
    DuplicateEventName(#[from] DuplicateEventName),
    /// One handler is registered twice for one event.
    #[error("handler `{handler}` is registered twice for `{event}`; register it once (discovered `#[handler]`s need no explicit registration)")]
    DuplicateHandler {
        /// The handler's name.
        handler: String,
        /// The event.
        event: &'static str,
    },
    /// The mode needs a publisher that is not in this program.
    #[error(
        "EVENT_BUS_MODE={mode} needs the EventBridge publisher, which is not built into this program: \
         add the `events-eventbridge` crate and `use events_eventbridge as _;` in main, or pass one with \
         `EventBusBuilder::publisher`"
    )]
    NoPublisher {
        /// The configured mode.
        mode: Mode,
    },
    /// The publisher could not be set up.
    #[error("cannot set up the {mode} publisher: {source}")]
    PublisherSetup {
        /// The configured mode.
        mode: Mode,
        /// The cause.
        #[source]
        source: PublishError,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An event could not be serialized; nothing was published.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// A received event could not be decoded.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// Some events were neither accepted by the remote bus nor stored.
    #[error("{} event(s) were not delivered and not stored (first: {}): {source}", failed.len(), failed.first().map(EventId::as_str).unwrap_or("-"))]
    NotDelivered {
        /// The events that were lost to this call (the caller still has them).
        failed: Vec<EventId>,
        /// The events of the same call that were delivered.
        delivered: Vec<EventId>,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The operation needs a store and the bus has none.
    #[error("this bus has no store (built with `without_store`)")]
    NoStore,
    /// A received event has handlers but no registered type to decode it.
    #[error("no event type named `{name}` is linked into this program")]
    UnknownEvent {
        /// The event name.
        name: String,
    },
    /// `shutdown` timed out with handler tasks still running.
    #[error("shutdown timed out with {pending} handler task(s) still running")]
    ShutdownTimeout {
        /// Tasks still running.
        pending: usize,
    },
}

/// How an event was delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Stored durably in the local store (local mode).
    Stored,
    /// Accepted by the remote bus.
    Published {
        /// The remote bus's id for the event (EventBridge's `EventId`, the
        /// `id` of the envelope a queue receives), when it gives one.
        remote_id: Option<String>,
    },
    /// Refused by the remote bus for a reason that may pass (throttling, an
    /// outage) and kept in the failover store for replay.
    FailedOver {
        /// The remote bus's error.
        error: String,
    },
    /// Refused by the remote bus for a reason that can never pass (too
    /// large, malformed, access denied) and kept in the store's dead letters,
    /// never re-sent on its own (`events dead-letters` lists it).
    DeadLettered {
        /// The remote bus's error.
        error: String,
    },
    /// Dispatched in process only: the bus has no store (tests, benchmarks).
    InProcess,
    /// The bus is disabled (`EVENT_BUS_ENABLED=false`): nothing happened.
    Disabled,
}

/// The result of one handler call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandlerStatus {
    /// It returned `Ok` (or `()`).
    Succeeded,
    /// It returned an error (its message).
    Failed(String),
    /// It panicked (the panic message).
    Panicked(String),
}

/// One handler's part in a publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerOutcome {
    /// The handler's stable name.
    pub handler: Cow<'static, str>,
    /// What happened.
    pub status: HandlerStatus,
}

/// What happened to one published event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishOutcome {
    id: EventId,
    name: &'static str,
    delivery: Delivery,
    handlers: Vec<HandlerOutcome>,
    spawned: usize,
}

impl PublishOutcome {
    /// The event's id.
    pub fn id(&self) -> &EventId {
        &self.id
    }

    /// The event's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// How it was delivered.
    pub fn delivery(&self) -> &Delivery {
        &self.delivery
    }

    /// The handlers that ran (empty when they were spawned).
    pub fn handlers(&self) -> &[HandlerOutcome] {
        &self.handlers
    }

    /// Names of the handlers that ran.
    pub fn handler_names(&self) -> impl Iterator<Item = &str> {
        self.handlers.iter().map(|h| h.handler.as_ref())
    }

    /// The handlers that failed or panicked.
    pub fn failures(&self) -> impl Iterator<Item = &HandlerOutcome> {
        self.handlers
            .iter()
            .filter(|h| h.status != HandlerStatus::Succeeded)
    }

    /// How many handler calls were spawned (async mode) instead of awaited.
    pub fn spawned(&self) -> usize {
        self.spawned
    }
}

/// What happened to each event of a batch, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BatchOutcome {
    /// One outcome per event.
    pub events: Vec<PublishOutcome>,
}

/// What `publish_from_failover` did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReplayReport {
    /// Events accepted by the remote bus and removed from the store.
    pub sent: Vec<EventId>,
    /// Events that failed and stay pending.
    pub failed: Vec<EventId>,
    /// Events that became dead letters.
    pub dead_lettered: Vec<EventId>,
}

/// The event bus. Cheap to clone: clones share one bus.
#[derive(Clone)]
pub struct EventBus {
    inner: Arc<Inner>,
}

struct Inner {
    config: BusConfig,
    handlers: HashMap<&'static str, Arc<[HandlerEntry]>>,
    event_types: EventTypes,
    store: Option<Arc<dyn EventStore>>,
    publisher: Option<Arc<dyn Publisher>>,
    dispatch_in_process: bool,
    max_permanent_failures: u32,
    tasks: TaskTracker,
}

impl std::fmt::Debug for EventBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventBus")
            .field("config", &self.inner.config)
            .field(
                "handlers",
                &self.inner.handlers.values().map(|h| h.len()).sum::<usize>(),
            )
            .field("store", &self.inner.store.is_some())
            .field(
                "publisher",
                &self.inner.publisher.as_ref().map(|p| p.name().to_owned()),
            )
            .finish()
    }
}

enum StoreChoice {
    FromConfig,
    Custom(Arc<dyn EventStore>),
    None,
}

/// Builds an [`EventBus`].
pub struct EventBusBuilder {
    config: BusConfig,
    discover: bool,
    explicit: Vec<HandlerEntry>,
    store: StoreChoice,
    publisher: Option<Arc<dyn Publisher>>,
    dispatch_in_process: Option<bool>,
    max_permanent_failures: u32,
}

impl EventBus {
    /// A builder with the default configuration (local mode, SQLite store at
    /// `.events-bus/events.db`, handler discovery on).
    pub fn builder() -> EventBusBuilder {
        EventBusBuilder {
            config: BusConfig::default(),
            discover: true,
            explicit: Vec::new(),
            store: StoreChoice::FromConfig,
            publisher: None,
            dispatch_in_process: None,
            max_permanent_failures: 3,
        }
    }

    /// Builds the bus from the environment (SPEC §6), with every discovered
    /// handler, and the publisher `EVENT_BUS_MODE` asks for. The one start-up
    /// call of a twelve-factor service.
    pub async fn from_env() -> Result<Self, BusError> {
        EventBus::builder()
            .config(BusConfig::from_env()?)
            .connect()
            .await
    }

    /// The configuration in force.
    pub fn config(&self) -> &BusConfig {
        &self.inner.config
    }

    /// The store, if the bus has one.
    pub fn store(&self) -> Option<&Arc<dyn EventStore>> {
        self.inner.store.as_ref()
    }

    /// Names of the handlers of `event_name`, in dispatch order.
    pub fn handlers_of(&self, event_name: &str) -> Vec<&str> {
        self.inner
            .handlers
            .get(event_name)
            .map(|hs| hs.iter().map(|h| h.name.as_ref()).collect())
            .unwrap_or_default()
    }

    /// Publishes one event. A bare `E` gets its id and `occurred_on` now; an
    /// `Event<E>` keeps its own.
    ///
    /// The future is `Send + 'static` (it holds a clone of the bus), so it
    /// can be spawned.
    pub fn publish<E: DomainEvent>(
        &self,
        event: impl Into<Event<E>>,
    ) -> impl Future<Output = Result<PublishOutcome, BusError>> + Send + 'static {
        let bus = self.clone();
        let event = AnyEvent::new(event.into());
        async move {
            let mut outcome = None;
            bus.publish_each(std::slice::from_ref(&event), |o| outcome = Some(o))
                .await?;
            outcome.ok_or_else(|| BusError::NotDelivered {
                failed: vec![event.id().clone()],
                delivered: Vec::new(),
                source: "internal error: no outcome for the published event".into(),
            })
        }
    }

    /// Publishes several events, of one or many types, in order.
    ///
    /// The future is `Send + 'static`, like [`Self::publish`]'s.
    pub fn publish_batch<I>(
        &self,
        events: I,
    ) -> impl Future<Output = Result<BatchOutcome, BusError>> + Send + 'static
    where
        I: IntoIterator,
        I::Item: Into<AnyEvent>,
    {
        let bus = self.clone();
        let events: Vec<AnyEvent> = events.into_iter().map(Into::into).collect();
        async move { bus.publish_all(&events).await }
    }

    /// Publishes everything `recorder` holds; it keeps only the events that
    /// were not delivered (so a failed publish can be retried without
    /// duplicates). A disabled bus (`EVENT_BUS_ENABLED=false`) drops them, as
    /// configured, and reports [`Delivery::Disabled`].
    pub async fn publish_recorded(
        &self,
        recorder: &mut Recorder,
    ) -> Result<BatchOutcome, BusError> {
        let result = self.publish_all(recorder.events()).await;
        match &result {
            Ok(_) => recorder.clear(),
            Err(BusError::NotDelivered { failed, .. }) => {
                recorder.retain(|e| failed.contains(e.id()))
            }
            Err(_) => {}
        }
        result
    }

    async fn publish_all(&self, events: &[AnyEvent]) -> Result<BatchOutcome, BusError> {
        let mut outcomes = Vec::with_capacity(events.len());
        self.publish_each(events, |o| outcomes.push(o)).await?;
        Ok(BatchOutcome { events: outcomes })
    }

    /// Delivers `events`, then dispatches each, handing each outcome to `sink`.
    async fn publish_each(
        &self,
        events: &[AnyEvent],
        mut sink: impl FnMut(PublishOutcome) + Send,
    ) -> Result<(), BusError> {
        let inner = &self.inner;
        if !inner.config.enabled {
            tracing::debug!(
                count = events.len(),
                "event bus disabled; nothing published"
            );
            events
                .iter()
                .for_each(|e| sink(outcome(e, Delivery::Disabled)));
            return Ok(());
        }
        let span = tracing::info_span!("publish", count = events.len(), mode = %inner.config.mode);
        async move {
            let deliveries = if inner.store.is_none() && inner.publisher.is_none() {
                Deliveries::Same(Delivery::InProcess, events.len())
            } else {
                self.deliver(events).await?
            };
            for (event, delivery) in events.iter().zip(deliveries) {
                let mut out = outcome(event, delivery);
                if inner.dispatch_in_process {
                    self.dispatch(event, &mut out).await;
                }
                sink(out);
            }
            Ok(())
        }
        .instrument(span)
        .await
    }

    /// Delivers every event or reports which were not.
    async fn deliver(&self, events: &[AnyEvent]) -> Result<Deliveries, BusError> {
        let inner = &self.inner;
        let raws = events
            .iter()
            .map(AnyEvent::to_raw)
            .collect::<Result<Vec<_>, _>>()?;
        match (&inner.publisher, &inner.store) {
            (None, Some(store)) => match store.store(raws).await {
                Ok(()) => {
                    for e in events {
                        tracing::info!(event = e.name(), id = %e.id(), "event stored");
                    }
                    Ok(Deliveries::Same(Delivery::Stored, events.len()))
                }
                Err(source) => {
                    tracing::error!(error = %source, count = events.len(), "events not stored");
                    Err(BusError::NotDelivered {
                        failed: events.iter().map(|e| e.id().clone()).collect(),
                        delivered: Vec::new(),
                        source: Box::new(source),
                    })
                }
            },
            (Some(publisher), store) => {
                let results = publisher.publish(&raws).await;
                let mut deliveries = Vec::with_capacity(events.len());
                let mut failed_raws = Vec::new();
                let mut dead = Vec::new();
                let mut results = results.into_iter();
                for raw in raws {
                    match results.next() {
                        Some(Ok(accepted)) => deliveries.push(Delivery::Published {
                            remote_id: accepted.remote_id,
                        }),
                        Some(Err(e)) if e.permanent => {
                            tracing::error!(event = %raw.name, id = %raw.id, error = %e, "publish refused for good; keeping the event as a dead letter");
                            let error = e.to_string();
                            dead.push((raw.id.clone(), error.clone()));
                            deliveries.push(Delivery::DeadLettered { error });
                            failed_raws.push(raw);
                        }
                        Some(Err(e)) => {
                            tracing::warn!(event = %raw.name, id = %raw.id, error = %e, "publish failed; failing over to the store");
                            deliveries.push(Delivery::FailedOver {
                                error: e.to_string(),
                            });
                            failed_raws.push(raw);
                        }
                        None => {
                            deliveries.push(Delivery::FailedOver {
                                error: "the publisher returned no result for this event".to_owned(),
                            });
                            failed_raws.push(raw);
                        }
                    }
                }
                if failed_raws.is_empty() {
                    return Ok(Deliveries::Each(deliveries.into_iter()));
                }
                let failed_ids: Vec<EventId> = failed_raws.iter().map(|r| r.id.clone()).collect();
                let stored = match store {
                    Some(store) => async {
                        store.store(failed_raws).await?;
                        for (id, error) in dead {
                            store.record_failure(id, error, true).await?;
                        }
                        Ok(())
                    }
                    .await
                    .map_err(|e: StoreError| {
                        Box::new(e) as Box<dyn std::error::Error + Send + Sync>
                    }),
                    None => Err("the bus has no failover store".into()),
                };
                match stored {
                    Ok(()) => Ok(Deliveries::Each(deliveries.into_iter())),
                    Err(source) => {
                        tracing::error!(error = %source, count = failed_ids.len(), "events neither published nor stored");
                        Err(BusError::NotDelivered {
                            delivered: events
                                .iter()
                                .map(|e| e.id().clone())
                                .filter(|id| !failed_ids.contains(id))
                                .collect(),
                            failed: failed_ids,
                            source,
                        })
                    }
                }
            }
            (None, None) => Ok(Deliveries::Same(Delivery::InProcess, events.len())),
        }
    }

    async fn dispatch(&self, event: &AnyEvent, out: &mut PublishOutcome) {
        let Some(handlers) = self.inner.handlers.get(event.name()) else {
            return;
        };
        if self.inner.config.async_handlers {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                out.spawned = handlers.len();
                let handlers = Arc::clone(handlers);
                let shared = event.shared.clone();
                let (name, id) = (event.name(), event.id().clone());
                let task = async move {
                    run_handlers(&handlers, shared, name, &id).await;
                };
                self.inner.tasks.spawn_on(task.in_current_span(), &runtime);
                return;
            }
            tracing::debug!("no tokio runtime: handlers run inline");
        }
        out.handlers = run_handlers(handlers, event.shared.clone(), event.name(), event.id()).await;
    }

    /// Dispatches an event received from elsewhere (SQS, Lambda, HTTP) to
    /// the in-process handlers of its name. An event nobody handles is not an
    /// error: the result is empty.
    ///
    /// The event is decoded before the future is returned, which is
    /// `Send + 'static`.
    pub fn dispatch_raw(
        &self,
        raw: &RawEvent,
    ) -> impl Future<Output = Result<Vec<HandlerOutcome>, BusError>> + Send + 'static {
        let prepared = self.prepare_raw(raw);
        let id = raw.id.clone();
        async move {
            match prepared? {
                Some((handlers, shared, name)) => {
                    Ok(run_handlers(&handlers, shared, name, &id).await)
                }
                None => Ok(Vec::new()),
            }
        }
    }

    /// The handlers of a received event and the event decoded for them.
    #[allow(clippy::type_complexity)]
    fn prepare_raw(
        &self,
        raw: &RawEvent,
    ) -> Result<Option<(Arc<[HandlerEntry]>, SharedEvent, &'static str)>, BusError> {
        let Some(handlers) = self.inner.handlers.get(raw.name.as_str()) else {
            tracing::debug!(event = %raw.name, id = %raw.id, "no handler for event");
            return Ok(None);
        };
        let ty = self
            .inner
            .event_types
            .get(&raw.name)
            .ok_or_else(|| BusError::UnknownEvent {
                name: raw.name.clone(),
            })?;
        let shared = ty.decode(raw)?;
        let name = handlers.first().map(|h| h.event_name).unwrap_or(ty.name);
        Ok(Some((Arc::clone(handlers), shared, name)))
    }

    /// Re-sends up to `max` of the oldest stored events through the
    /// publisher, in order, removing each only after it was accepted.
    /// Permanent failures become dead letters after the configured number of
    /// attempts (3 by default).
    ///
    /// The future is `Send + 'static`.
    pub fn publish_from_failover(
        &self,
        max: usize,
    ) -> impl Future<Output = Result<ReplayReport, BusError>> + Send + 'static {
        let bus = self.clone();
        async move { bus.replay(max).await }
    }

    async fn replay(&self, max: usize) -> Result<ReplayReport, BusError> {
        let store = self.inner.store.as_ref().ok_or(BusError::NoStore)?;
        let publisher = self.inner.publisher.as_ref().ok_or(BusError::NoPublisher {
            mode: self.inner.config.mode,
        })?;
        let pending = store.peek(max).await?;
        let mut report = ReplayReport::default();
        if pending.is_empty() {
            return Ok(report);
        }
        let span = tracing::info_span!("replay", count = pending.len());
        async {
            let raws: Vec<RawEvent> = pending.iter().map(|s| s.event.clone()).collect();
            let results = publisher.publish(&raws).await;
            for (i, stored) in pending.iter().enumerate() {
                let id = stored.event.id.clone();
                match results.get(i) {
                    Some(Ok(_)) => report.sent.push(id),
                    Some(Err(e)) => {
                        let dead = e.permanent && stored.attempts + 1 >= self.inner.max_permanent_failures;
                        tracing::warn!(event = %stored.event.name, id = %id, error = %e, dead, "replay failed");
                        store.record_failure(id.clone(), e.to_string(), dead).await?;
                        if dead {
                            report.dead_lettered.push(id);
                        } else {
                            report.failed.push(id);
                        }
                    }
                    None => {
                        store
                            .record_failure(id.clone(), "the publisher returned no result".to_owned(), false)
                            .await?;
                        report.failed.push(id);
                    }
                }
            }
            store.ack(report.sent.clone()).await?;
            tracing::info!(sent = report.sent.len(), failed = report.failed.len(), dead = report.dead_lettered.len(), "replay done");
            Ok(report)
        }
        .instrument(span)
        .await
    }

    /// Starts a background task that replays the failover store every
    /// `options.interval`, backing off (doubling, with jitter, up to
    /// `options.max_backoff`) while the remote bus refuses events or errors.
    /// The task is owned by the returned [`Replayer`]: stop it with
    /// [`Replayer::stop`] (dropping the handle stops it too).
    ///
    /// Needs a tokio runtime, a store and a publisher.
    pub fn spawn_replayer(&self, options: ReplayerOptions) -> Result<Replayer, BusError> {
        if self.inner.store.is_none() {
            return Err(BusError::NoStore);
        }
        if self.inner.publisher.is_none() {
            return Err(BusError::NoPublisher {
                mode: self.inner.config.mode,
            });
        }
        let bus = self.clone();
        let token = tokio_util::sync::CancellationToken::new();
        let stop = token.clone();
        let task = tokio::spawn(
            async move {
                let mut delay = options.interval;
                loop {
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(delay) => {}
                    }
                    delay = match bus.drain(options.batch, &stop).await {
                        Ok(true) => options.interval,
                        Ok(false) | Err(_) => backoff(delay, options.max_backoff),
                    };
                }
            }
            .instrument(tracing::info_span!("replayer")),
        );
        Ok(Replayer {
            token,
            task: Some(task),
        })
    }

    /// Replays until the store is empty; `Ok(false)` when the remote
    /// refused something (time to back off).
    async fn drain(
        &self,
        batch: usize,
        stop: &tokio_util::sync::CancellationToken,
    ) -> Result<bool, BusError> {
        loop {
            if stop.is_cancelled() {
                return Ok(true);
            }
            let report = self.publish_from_failover(batch).await.map_err(|e| {
                tracing::warn!(error = %e, "background replay failed");
                e
            })?;
            if !report.failed.is_empty() {
                return Ok(false);
            }
            if report.sent.is_empty() && report.dead_lettered.is_empty() {
                return Ok(true);
            }
        }
    }

    /// Takes up to `max` of the oldest events out of the store (the seed's
    /// `failover.consume`).
    pub fn consume(
        &self,
        max: usize,
    ) -> impl Future<Output = Result<Vec<StoredEvent>, BusError>> + Send + 'static {
        let bus = self.clone();
        async move { bus.take(max).await }
    }

    async fn take(&self, max: usize) -> Result<Vec<StoredEvent>, BusError> {
        let store = self.inner.store.as_ref().ok_or(BusError::NoStore)?;
        let taken = store
            .consume(max)
            .instrument(tracing::info_span!("consume", max))
            .await?;
        tracing::debug!(count = taken.len(), "events consumed from the store");
        Ok(taken)
    }

    /// Waits (at most `timeout`) for spawned handler work to finish. Call it
    /// before exiting in async mode, so no handler work is silently dropped.
    pub async fn shutdown(&self, timeout: Duration) -> Result<(), BusError> {
        let tasks = &self.inner.tasks;
        tasks.close();
        let result = tokio::time::timeout(timeout, tasks.wait()).await;
        let pending = tasks.len();
        tasks.reopen();
        match result {
            Ok(()) => Ok(()),
            Err(_) => Err(BusError::ShutdownTimeout { pending }),
        }
    }
}

/// How each event of a call was delivered, without a `Vec` when all were
/// delivered alike.
enum Deliveries {
    Same(Delivery, usize),
    Each(std::vec::IntoIter<Delivery>),
}

impl Iterator for Deliveries {
    type Item = Delivery;
    fn next(&mut self) -> Option<Delivery> {
        match self {
            Deliveries::Same(_, 0) => None,
            Deliveries::Same(delivery, left) => {
                *left -= 1;
                Some(delivery.clone())
            }
            Deliveries::Each(each) => each.next(),
        }
    }
}

fn outcome(event: &AnyEvent, delivery: Delivery) -> PublishOutcome {
    PublishOutcome {
        id: event.id().clone(),
        name: event.name(),
        delivery,
        handlers: Vec::new(),
        spawned: 0,
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

/// Runs every handler of one event in order, isolating errors and panics,
/// inside a `dispatch` span (event name, id) with one `handle` span per
/// handler (event name, id, handler name).
async fn run_handlers(
    handlers: &[HandlerEntry],
    event: SharedEvent,
    name: &'static str,
    id: &EventId,
) -> Vec<HandlerOutcome> {
    let span = tracing::info_span!("dispatch", event = name, id = %id, handlers = handlers.len());
    run_each(handlers, event, name, id).instrument(span).await
}

async fn run_each(
    handlers: &[HandlerEntry],
    event: SharedEvent,
    name: &'static str,
    id: &EventId,
) -> Vec<HandlerOutcome> {
    let mut outcomes = Vec::with_capacity(handlers.len());
    for entry in handlers {
        let span = tracing::info_span!("handle", event = name, id = %id, handler = %entry.name);
        let status = match std::panic::catch_unwind(AssertUnwindSafe(|| {
            entry.handler.call(event.clone())
        })) {
            Ok(Ok(future)) => match AssertUnwindSafe(future)
                .catch_unwind()
                .instrument(span.clone())
                .await
            {
                Ok(Ok(())) => HandlerStatus::Succeeded,
                Ok(Err(e)) => HandlerStatus::Failed(e.to_string()),
                Err(panic) => HandlerStatus::Panicked(panic_message(&*panic)),
            },
            Ok(Err(_)) => HandlerStatus::Failed(format!(
                "internal error: handler `{}` expects `{}`, which is not the type of `{name}`",
                entry.name, entry.event_type_name
            )),
            Err(panic) => HandlerStatus::Panicked(panic_message(&*panic)),
        };
        span.in_scope(|| match &status {
            HandlerStatus::Succeeded => tracing::debug!("handler succeeded"),
            HandlerStatus::Failed(error) => tracing::error!(%error, "handler failed"),
            HandlerStatus::Panicked(panic) => tracing::error!(%panic, "handler panicked"),
        });
        outcomes.push(HandlerOutcome {
            handler: entry.name.clone(),
            status,
        });
    }
    outcomes
}

impl EventBusBuilder {
    /// Replaces the whole configuration (e.g. with [`BusConfig::from_env`]).
    pub fn config(mut self, config: BusConfig) -> Self {
        self.config = config;
        self
    }

    /// Enables or disables publishing.
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.config.enabled = enabled;
        self
    }

    /// Spawns handlers (`true`) instead of awaiting them in `publish`.
    pub fn async_handlers(mut self, async_handlers: bool) -> Self {
        self.config.async_handlers = async_handlers;
        self
    }

    /// Sets the mode.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.config.mode = mode;
        self
    }

    /// The mode the bus will be built in.
    pub fn configured_mode(&self) -> Mode {
        self.config.mode
    }

    /// Turns `#[handler]` discovery on (the default) or off.
    pub fn discover(mut self, discover: bool) -> Self {
        self.discover = discover;
        self
    }

    /// Registers a handler built at run time (with its dependencies). Its
    /// name is its type's path.
    pub fn register_handler<E: DomainEvent, H: Handler<E>>(self, handler: H) -> Self {
        self.register_handler_named(std::any::type_name::<H>(), handler)
    }

    /// Registers a handler under an explicit name.
    pub fn register_handler_named<E: DomainEvent, H: Handler<E>>(
        mut self,
        name: impl Into<Cow<'static, str>>,
        handler: H,
    ) -> Self {
        self.explicit
            .push(HandlerEntry::typed::<E, H>(name.into(), handler));
        self
    }

    /// Uses the SQLite store at `path` (the default is `EVENT_BUS_STORE_PATH`).
    pub fn store_path(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.config.store_path = path.into();
        self.store = StoreChoice::FromConfig;
        self
    }

    /// Uses `store` as the local and failover store.
    pub fn store(mut self, store: Arc<dyn EventStore>) -> Self {
        self.store = StoreChoice::Custom(store);
        self
    }

    /// Uses a fresh [`MemoryStore`] (not durable: tests only).
    pub fn in_memory_store(self) -> Self {
        self.store(Arc::new(MemoryStore::new()))
    }

    /// No store at all: events are only dispatched in process, and in
    /// eventbridge mode a failed publish is an error.
    pub fn without_store(mut self) -> Self {
        self.store = StoreChoice::None;
        self
    }

    /// Sets the remote publisher (eventbridge mode).
    pub fn publisher(mut self, publisher: Arc<dyn Publisher>) -> Self {
        self.publisher = Some(publisher);
        self
    }

    /// Whether published events also go to in-process handlers. Default:
    /// yes in local mode; no in eventbridge mode, where consumers (SQS,
    /// Lambda, HTTP) run the handlers.
    pub fn dispatch_in_process(mut self, yes: bool) -> Self {
        self.dispatch_in_process = Some(yes);
        self
    }

    /// Permanent failures after which a replayed event becomes a dead letter.
    pub fn max_permanent_failures(mut self, attempts: u32) -> Self {
        self.max_permanent_failures = attempts.max(1);
        self
    }

    /// Builds the bus, connecting the publisher of the configured mode from
    /// a linked provider (such as `events-eventbridge`) if none was given.
    pub async fn connect(mut self) -> Result<EventBus, BusError> {
        if self.config.mode != Mode::Local && self.publisher.is_none() && self.config.enabled {
            let mode = self.config.mode;
            let provider = provider(mode.as_str()).ok_or(BusError::NoPublisher { mode })?;
            let publisher = (provider.build)(&self.config)
                .await
                .map_err(|source| BusError::PublisherSetup { mode, source })?;
            self.publisher = Some(publisher);
        }
        self.build()
    }

    /// Builds the bus: discovers handlers, checks event names, opens the store.
    pub fn build(self) -> Result<EventBus, BusError> {
        let mut types = EventTypes::discover()?;
        let mut handlers: HashMap<&'static str, Vec<HandlerEntry>> = HashMap::new();
        let mut discovered = 0usize;
        let entries = if self.discover {
            let mut found: Vec<_> = discovered_handlers().collect();
            // Link order is not stable across builds; names are.
            found.sort_by_key(|r| r.name());
            found.into_iter().map(|r| r.entry()).collect::<Vec<_>>()
        } else {
            Vec::new()
        };
        discovered += entries.len();
        for entry in entries.into_iter().chain(self.explicit) {
            types.insert(
                entry.event_name,
                entry.event_type_name,
                entry.event_type_id,
                None,
            )?;
            let list = handlers.entry(entry.event_name).or_default();
            if list.iter().any(|h| h.name == entry.name) {
                return Err(BusError::DuplicateHandler {
                    handler: entry.name.into_owned(),
                    event: entry.event_name,
                });
            }
            list.push(entry);
        }
        if self.discover && discovered == 0 {
            tracing::warn!(
                event_types = types.len(),
                "handler discovery found no #[handler] in this program; if your handlers live in another crate, \
                 make sure it is linked: add `use my_handlers as _;` to main.rs (the linker drops crates nothing references)"
            );
        }
        let config = self.config;
        if config.mode != Mode::Local && self.publisher.is_none() && config.enabled {
            return Err(BusError::NoPublisher { mode: config.mode });
        }
        let store: Option<Arc<dyn EventStore>> = match self.store {
            _ if !config.enabled => None,
            StoreChoice::FromConfig => Some(Arc::new(SqliteStore::open(&config.store_path)?)),
            StoreChoice::Custom(store) => Some(store),
            StoreChoice::None => None,
        };
        let publisher = if config.mode == Mode::Local {
            None
        } else {
            self.publisher
        };
        let dispatch_in_process = self
            .dispatch_in_process
            .unwrap_or(config.mode == Mode::Local);
        let count: usize = handlers.values().map(Vec::len).sum();
        tracing::info!(
            mode = %config.mode,
            enabled = config.enabled,
            handlers = count,
            event_types = types.len(),
            "event bus ready"
        );
        Ok(EventBus {
            inner: Arc::new(Inner {
                handlers: handlers
                    .into_iter()
                    .map(|(k, v)| (k, Arc::from(v)))
                    .collect(),
                event_types: types,
                store,
                publisher,
                dispatch_in_process,
                max_permanent_failures: self.max_permanent_failures,
                tasks: TaskTracker::new(),
                config,
            }),
        })
    }
}

/// Options of [`EventBus::spawn_replayer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayerOptions {
    /// Time between replays while all goes well.
    pub interval: Duration,
    /// The longest wait after repeated failures.
    pub max_backoff: Duration,
    /// Events per call to the remote bus.
    pub batch: usize,
}

impl Default for ReplayerOptions {
    fn default() -> Self {
        ReplayerOptions {
            interval: Duration::from_secs(30),
            max_backoff: Duration::from_secs(600),
            batch: 10,
        }
    }
}

/// Doubles `delay` with ±25 % jitter, capped at `max`.
fn backoff(delay: Duration, max: Duration) -> Duration {
    let doubled = delay.saturating_mul(2).min(max);
    // Jitter from the clock's low bits: enough to keep many processes apart.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let factor = 0.75 + f64::from(nanos % 1000) / 2000.0;
    doubled.mul_f64(factor).min(max)
}

/// The handle of a background replayer; stops it when dropped.
#[derive(Debug)]
pub struct Replayer {
    token: tokio_util::sync::CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Replayer {
    /// Stops the replayer after the batch in flight, and waits for it.
    pub async fn stop(mut self) {
        self.token.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Replayer {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

// ------------------------------------------------------- process-wide bus

static GLOBAL: Mutex<Option<EventBus>> = Mutex::new(None);

fn global() -> std::sync::MutexGuard<'static, Option<EventBus>> {
    // The guarded value is a plain Option swap: a poisoned lock is consistent.
    GLOBAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// The process-wide bus, for dependency injection: built from the
/// environment ([`EventBus::from_env`]) on first use, or the one given to
/// [`set_event_bus`].
pub async fn get_event_bus() -> Result<EventBus, BusError> {
    if let Some(bus) = global().clone() {
        return Ok(bus);
    }
    let bus = EventBus::from_env().await?;
    // Another task may have won the race: keep the first one.
    Ok(global().get_or_insert(bus).clone())
}

/// Makes `bus` the process-wide bus.
pub fn set_event_bus(bus: EventBus) {
    *global() = Some(bus);
}

/// Forgets the process-wide bus (tests call it between cases); the next
/// [`get_event_bus`] builds a new one.
pub fn reset_event_bus() {
    global().take();
}
