//! [`RecordingBus`]: a real [`EventBus`] whose remote bus is a recorder.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::handlers::{find_handler, run_entry};
use super::render::{self, Step};
use crate::bus::{BusError, EventBus, EventBusBuilder, HandlerOutcome};
use crate::config::Mode;
use crate::envelope::{Event, RawEvent};
use crate::event::DomainEvent;
use crate::handler::{discovered_handlers, Handler, HandlerEntry, HandlerResult};
use crate::publisher::{Accepted, BoxFuture, PublishError, Publisher};
use crate::store::MemoryStore;

/// What the recorder holds, shared by the bus's publisher and the kit.
#[derive(Debug, Default)]
struct Log {
    /// Every event accepted, in order.
    events: Mutex<Vec<RawEvent>>,
    /// How many of them [`RecordingBus::dispatch_published`] has dispatched.
    dispatched: Mutex<usize>,
    /// Errors to answer the next events with, instead of accepting them.
    refusals: Mutex<VecDeque<PublishError>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section is a push, a read or a counter update: a
    // poisoned lock (a panicking test thread) is still consistent.
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// The bus's remote publisher: accepts everything and keeps it.
struct RecordingPublisher {
    log: Arc<Log>,
}

impl Publisher for RecordingPublisher {
    fn name(&self) -> &str {
        "recording"
    }

    fn publish<'a>(
        &'a self,
        events: &'a [RawEvent],
    ) -> BoxFuture<'a, Vec<Result<Accepted, PublishError>>> {
        let mut refusals = lock(&self.log.refusals);
        let mut recorded = lock(&self.log.events);
        let answers = events
            .iter()
            .map(|event| match refusals.pop_front() {
                Some(error) => Err(error),
                None => {
                    recorded.push(event.clone());
                    Ok(Accepted::default())
                }
            })
            .collect();
        Box::pin(std::future::ready(answers))
    }
}

/// A bus for tests: an [`EventBus`] that publishes nothing anywhere and
/// keeps what was published, in order.
///
/// It is a real `EventBus` (it dereferences to one, and
/// [`event_bus`](Self::event_bus) gives a clone to inject), built in
/// eventbridge mode with a recording publisher in place of EventBridge and an
/// in-memory failover store: the code under test runs the real publish path,
/// serialization included, and the kit reads back exactly what EventBridge
/// would have been sent.
///
/// By default the handlers do not run when an event is published (as in
/// eventbridge mode, where consumers run them): test use cases without their
/// side effects, then run the handlers when the test asks, with
/// [`dispatch_published`](Self::dispatch_published) or a
/// [`Scenario`](super::Scenario). [`RecordingBus::builder`] can make the bus
/// run them in `publish`, awaited or spawned (async mode, with
/// [`settle`](Self::settle)).
///
/// Clones share one recorder. Each test builds its own: tests running in
/// parallel never see each other's events. It ignores the `EVENT_BUS_*`
/// environment: a test behaves the same wherever it runs.
#[derive(Clone)]
pub struct RecordingBus {
    bus: EventBus,
    log: Arc<Log>,
    in_process: bool,
    /// The handlers the test registered, shared with the bus, for
    /// [`run_handler`](Self::run_handler).
    registered: Arc<[HandlerEntry]>,
    /// Whether the bus has the discovered handlers.
    discover: bool,
}

impl std::fmt::Debug for RecordingBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingBus")
            .field("published", &lock(&self.log.events).len())
            .field("in_process", &self.in_process)
            .field("bus", &self.bus)
            .finish()
    }
}

impl Default for RecordingBus {
    fn default() -> Self {
        RecordingBus::new()
    }
}

impl Deref for RecordingBus {
    type Target = EventBus;
    fn deref(&self) -> &EventBus {
        &self.bus
    }
}

impl From<&RecordingBus> for EventBus {
    fn from(bus: &RecordingBus) -> Self {
        bus.bus.clone()
    }
}

impl From<RecordingBus> for EventBus {
    fn from(bus: RecordingBus) -> Self {
        bus.bus
    }
}

/// One recorded event and what its handlers did
/// ([`RecordingBus::dispatch_published`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dispatched {
    /// The event, as it was published.
    pub event: RawEvent,
    /// Each handler's outcome, in dispatch order.
    pub outcomes: Vec<HandlerOutcome>,
}

impl RecordingBus {
    /// A recording bus with every discovered `#[handler]`, which run only
    /// when the test dispatches the recorded events.
    ///
    /// # Panics
    ///
    /// If the bus cannot be built: two types claim one event name in this
    /// program (the message names both). [`RecordingBus::builder`] returns
    /// the error instead.
    pub fn new() -> Self {
        match RecordingBus::builder().build() {
            Ok(bus) => bus,
            Err(e) => panic!("cannot build the recording bus: {e}"),
        }
    }

    /// A builder, to register handlers with dependencies or to run handlers
    /// in `publish`.
    pub fn builder() -> RecordingBusBuilder {
        RecordingBusBuilder::new()
    }

    /// A clone of the bus, to give to the code under test.
    pub fn event_bus(&self) -> EventBus {
        self.bus.clone()
    }

    /// Everything published, in order, as it was sent (the wire's
    /// [`RawEvent`]: id, name, `occurred_on`, attributes JSON).
    pub fn published_raw(&self) -> Vec<RawEvent> {
        lock(&self.log.events).clone()
    }

    /// The names of everything published, in order.
    pub fn published_names(&self) -> Vec<String> {
        lock(&self.log.events)
            .iter()
            .map(|e| e.name.clone())
            .collect()
    }

    /// The published events of type `E`, in order, with their ids and times,
    /// read back from what was sent.
    ///
    /// # Panics
    ///
    /// If a recorded `E` does not decode as an `E` (its attributes do not
    /// survive their own round trip): the message names the event and field.
    pub fn published<E: DomainEvent>(&self) -> Vec<Event<E>> {
        self.published_raw()
            .iter()
            .filter(|raw| raw.name == E::EVENT_NAME)
            .map(decode::<E>)
            .collect()
    }

    /// Makes the stand-in for EventBridge refuse the next `count` events
    /// with `error`, to test what the code under test does when the remote
    /// bus is down: refused events are not recorded as published; the bus
    /// keeps them in its (in-memory) failover store, pending when `error` is
    /// [retryable](PublishError::retryable) (`Delivery::FailedOver`), as dead
    /// letters when it is [permanent](PublishError::permanent). Read them
    /// with `bus.store()`; `bus.publish_from_failover(n)` re-sends them here.
    ///
    /// ```
    /// use events_core::bus::Delivery;
    /// use events_core::testing::RecordingBus;
    /// use events_core::PublishError;
    /// # #[derive(events_core::DomainEvent, Debug, Clone)]
    /// # #[event(company = "acme", service = "shop", version = 1, resource = "order", action = "placed")]
    /// # struct OrderPlaced { total: u64 }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let bus = RecordingBus::new();
    /// bus.refuse_next(1, PublishError::retryable("ThrottlingException", "slow down"));
    /// let outcome = bus.publish(OrderPlaced { total: 10 }).await?;
    /// assert!(matches!(outcome.delivery(), Delivery::FailedOver { .. }));
    /// bus.assert_published_exactly(&[]);
    ///
    /// bus.publish_from_failover(10).await?; // the remote is back
    /// bus.assert_published::<OrderPlaced>(|e| e.total == 10);
    /// # Ok(())
    /// # }
    /// ```
    pub fn refuse_next(&self, count: usize, error: PublishError) {
        lock(&self.log.refusals).extend(std::iter::repeat_n(error, count));
    }

    /// Runs every handler this bus has for `E` on `event` (the discovered
    /// `#[handler]`s and those registered with
    /// [`register_handler`](RecordingBusBuilder::register_handler)), in
    /// dispatch order, and returns each one's outcome, errors and panics
    /// isolated. Nothing is published or recorded.
    ///
    /// The handlers get the event as a consumer receives it, through its wire
    /// form ([`EventBus::dispatch_raw`]).
    ///
    /// ```
    /// use events_core::testing::{assert_handlers_succeeded, RecordingBus};
    /// use events_core::{Event, Handler, HandlerResult};
    /// # #[derive(events_core::DomainEvent, Debug, Clone)]
    /// # #[event(company = "acme", service = "shop", version = 1, resource = "order", action = "placed")]
    /// # struct OrderPlaced { total: u64 }
    ///
    /// /// A handler with a dependency, registered explicitly.
    /// struct ReserveStock { warehouse: Vec<u64> }
    ///
    /// impl Handler<OrderPlaced> for ReserveStock {
    ///     async fn handle(&self, event: &Event<OrderPlaced>) -> HandlerResult {
    ///         if self.warehouse.contains(&event.total) { Ok(()) } else { Err("out of stock".into()) }
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let bus = RecordingBus::builder()
    ///     .register_handler(ReserveStock { warehouse: vec![10] })
    ///     .build()
    ///     .unwrap();
    /// let outcomes = bus.run_handlers(OrderPlaced { total: 10 }).await;
    /// assert!(outcomes.iter().any(|o| o.handler.ends_with("ReserveStock")));
    /// assert_handlers_succeeded(&outcomes);
    /// bus.assert_published_exactly(&[]);
    /// # }
    /// ```
    ///
    /// # Panics
    ///
    /// If `event` cannot be serialized, or its wire form does not decode
    /// (the message names the event and field).
    pub async fn run_handlers<E: DomainEvent>(
        &self,
        event: impl Into<Event<E>>,
    ) -> Vec<HandlerOutcome> {
        let event = event.into();
        let raw = match RawEvent::from_event(&event) {
            Ok(raw) => raw,
            Err(e) => panic!(
                "cannot serialize the `{}` to run its handlers: {e}",
                E::EVENT_NAME
            ),
        };
        match self.bus.dispatch_raw(&raw).await {
            Ok(outcomes) => outcomes,
            Err(e) => panic!(
                "cannot run the handlers of {}: {e}",
                render::event_line(&raw)
            ),
        }
    }

    /// Runs one handler of this bus for `E` (discovered or registered) on
    /// `event` and returns its outcome, errors and panics isolated. Nothing is
    /// published or recorded.
    ///
    /// `name` is the handler's full name or its last segments, as in
    /// [`run_handler`](super::run_handler); a handler registered with
    /// [`register_handler`](RecordingBusBuilder::register_handler) is named
    /// after its type (`my_crate::ReserveStock`, or `ReserveStock`).
    ///
    /// # Panics
    ///
    /// If no handler of `E` on this bus has that name, or several do; the
    /// message lists them.
    pub async fn run_handler<E: DomainEvent>(
        &self,
        name: &str,
        event: impl Into<Event<E>>,
    ) -> HandlerOutcome {
        let mut entries: Vec<HandlerEntry> = if self.discover {
            discovered_handlers()
                .filter(|h| h.event_name() == E::EVENT_NAME)
                .map(|h| h.entry())
                .collect()
        } else {
            Vec::new()
        };
        entries.extend(self.registered.iter().cloned());
        let entry = find_handler::<E>(&entries, name, "handler on this bus");
        run_entry::<E>(entry, event.into()).await
    }

    /// Forgets everything recorded so far, and any refusal still queued.
    pub fn clear(&self) {
        lock(&self.log.refusals).clear();
        lock(&self.log.events).clear();
        *lock(&self.log.dispatched) = 0;
    }

    /// Asserts that an `E` for which `matches` is true was published, and
    /// returns the first such event.
    ///
    /// # Panics
    ///
    /// If none was; the message lists what was published instead (name, id,
    /// attributes).
    #[track_caller]
    pub fn assert_published<E: DomainEvent>(
        &self,
        matches: impl Fn(&Event<E>) -> bool,
    ) -> Event<E> {
        let all = self.published_raw();
        let mut of_type = 0;
        for raw in all.iter().filter(|raw| raw.name == E::EVENT_NAME) {
            of_type += 1;
            let event = decode::<E>(raw);
            if matches(&event) {
                return event;
            }
        }
        let what = if of_type == 0 {
            "it was not".to_owned()
        } else {
            let verb = if of_type == 1 { "was" } else { "were" };
            format!("{of_type} {verb}, none matching")
        };
        panic!(
            "expected a `{}` matching the condition to be published; {what}. Published:\n{}",
            E::EVENT_NAME,
            render::event_list(&all)
        )
    }

    /// Asserts that no `E` was published.
    ///
    /// # Panics
    ///
    /// If one was; the message lists everything published.
    #[track_caller]
    pub fn assert_not_published<E: DomainEvent>(&self) {
        let all = self.published_raw();
        let count = all.iter().filter(|raw| raw.name == E::EVENT_NAME).count();
        if count > 0 {
            panic!(
                "expected no `{}` to be published; {count} {}. Published:\n{}",
                E::EVENT_NAME,
                if count == 1 { "was" } else { "were" },
                render::event_list(&all)
            );
        }
    }

    /// Asserts that events with these names were published in this order;
    /// other events may come before, between and after them.
    ///
    /// # Panics
    ///
    /// If they were not; the message says how far the order held and lists
    /// everything published.
    #[track_caller]
    pub fn assert_published_in_order(&self, names: &[&str]) {
        let all = self.published_raw();
        let mut found = 0;
        for raw in &all {
            if found < names.len() && raw.name == names[found] {
                found += 1;
            }
        }
        if found == names.len() {
            return;
        }
        let expected: Vec<String> = names
            .iter()
            .enumerate()
            .map(|(i, n)| format!("  {}. {n}", i + 1))
            .collect();
        let after = if found == 0 {
            String::new()
        } else {
            format!(" after `{}`", names[found - 1])
        };
        panic!(
            "expected these events to be published in this order (others may come between):\n{}\n\
             found {found} of {} in order, then no `{}`{after}. Published:\n{}",
            expected.join("\n"),
            names.len(),
            names[found],
            render::event_list(&all)
        )
    }

    /// Asserts that exactly events with these names were published, in this
    /// order, and nothing else.
    ///
    /// # Panics
    ///
    /// If not; the message is a diff of the expected names against what was
    /// published (`-` expected and missing, `+` published and not expected).
    #[track_caller]
    pub fn assert_published_exactly(&self, names: &[&str]) {
        let all = self.published_raw();
        let steps = render::diff(names.len(), all.len(), |i, j| all[j].name == names[i]);
        if steps.iter().all(|s| matches!(s, Step::Same(..))) {
            return;
        }
        let lines: Vec<String> = steps
            .iter()
            .map(|step| match *step {
                Step::Same(_, j) => format!("    {}", render::event_line(&all[j])),
                Step::Missing(i) => format!("  - {}", names[i]),
                Step::Extra(j) => format!("  + {}", render::event_line(&all[j])),
            })
            .collect();
        panic!(
            "expected exactly these events, in this order (- expected, + published):\n{}",
            lines.join("\n")
        )
    }

    /// Runs the handlers of every event recorded since the last call, through
    /// the bus's dispatch of received events ([`EventBus::dispatch_raw`], as
    /// SQS, Lambda and HTTP consumers do): each event is decoded from what was
    /// sent, and all of its handlers run, in order, errors and panics
    /// isolated.
    ///
    /// # Panics
    ///
    /// If this bus already runs handlers in `publish` (they would run twice),
    /// or if a recorded event cannot be decoded for its handlers.
    pub async fn dispatch_published(&self) -> Vec<Dispatched> {
        let end = lock(&self.log.events).len();
        let start = std::mem::replace(&mut *lock(&self.log.dispatched), end);
        self.dispatch_range(start, end).await
    }

    /// Dispatches the recorded events `start..end` (see
    /// [`dispatch_published`](Self::dispatch_published)).
    pub(crate) async fn dispatch_range(&self, start: usize, end: usize) -> Vec<Dispatched> {
        if self.in_process {
            panic!(
                "this recording bus runs handlers when events are published (`dispatch_in_process` or \
                 `async_handlers`); dispatching what it recorded would run them twice. Build it with \
                 `RecordingBus::new()` to run handlers when the test asks"
            );
        }
        let events: Vec<RawEvent> = {
            let log = lock(&self.log.events);
            log.get(start..end).map(<[_]>::to_vec).unwrap_or_default()
        };
        let mut out = Vec::with_capacity(events.len());
        for event in events {
            match self.bus.dispatch_raw(&event).await {
                Ok(outcomes) => out.push(Dispatched { event, outcomes }),
                Err(e) => panic!(
                    "cannot dispatch the recorded {}: {e}",
                    render::event_line(&event)
                ),
            }
        }
        out
    }

    /// Marks the events recorded so far as dispatched.
    pub(crate) fn mark_dispatched(&self, end: usize) {
        let mut dispatched = lock(&self.log.dispatched);
        *dispatched = (*dispatched).max(end);
    }

    /// How many events were recorded so far.
    pub(crate) fn recorded(&self) -> usize {
        lock(&self.log.events).len()
    }

    /// Whether handlers run in `publish`.
    pub(crate) fn runs_handlers_in_publish(&self) -> bool {
        self.in_process
    }

    /// Waits until every handler spawned by `publish` (async mode) has
    /// finished, at most `timeout`: tests of async mode await this instead of
    /// sleeping. Returns at once when nothing is running.
    ///
    /// It does not return the spawned handlers' outcomes: the bus does not
    /// keep them (a failure is logged). Assert what the handlers did, or run
    /// them with [`run_handlers`](Self::run_handlers) to see their outcomes.
    ///
    /// # Panics
    ///
    /// If handler work is still running after `timeout`; the message says
    /// how many tasks.
    #[track_caller]
    pub fn settle(&self, timeout: Duration) -> impl std::future::Future<Output = ()> + Send + '_ {
        let caller = std::panic::Location::caller();
        async move {
            if let Err(e) = self.bus.shutdown(timeout).await {
                let pending = match e {
                    BusError::ShutdownTimeout { pending } => pending,
                    _ => 0,
                };
                panic!(
                    "spawned handlers did not settle within {timeout:?}: {pending} task(s) still running \
                     (settle called at {caller})"
                );
            }
        }
    }
}

fn decode<E: DomainEvent>(raw: &RawEvent) -> Event<E> {
    match raw.decode::<E>() {
        Ok(event) => event,
        Err(e) => panic!(
            "the published {} does not decode as `{}`: {e}",
            render::event_line(raw),
            std::any::type_name::<E>()
        ),
    }
}

/// Builds a [`RecordingBus`].
pub struct RecordingBusBuilder {
    builder: EventBusBuilder,
    log: Arc<Log>,
    in_process: bool,
    registered: Vec<HandlerEntry>,
    discover: bool,
}

/// A registered handler shared between the bus and the kit (for
/// [`RecordingBus::run_handler`]).
struct Shared<H>(Arc<H>);

impl<E: DomainEvent, H: Handler<E>> Handler<E> for Shared<H> {
    fn handle(&self, event: &Event<E>) -> impl std::future::Future<Output = HandlerResult> + Send {
        self.0.handle(event)
    }
}

impl std::fmt::Debug for RecordingBusBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingBusBuilder")
            .field("in_process", &self.in_process)
            .finish_non_exhaustive()
    }
}

impl RecordingBusBuilder {
    fn new() -> Self {
        RecordingBusBuilder {
            builder: EventBus::builder()
                .mode(Mode::EventBridge)
                .enabled(true)
                .async_handlers(false)
                .store(Arc::new(MemoryStore::new()))
                .dispatch_in_process(false),
            log: Arc::new(Log::default()),
            in_process: false,
            registered: Vec::new(),
            discover: true,
        }
    }

    /// Turns `#[handler]` discovery on (the default) or off.
    pub fn discover(mut self, discover: bool) -> Self {
        self.discover = discover;
        self.builder = self.builder.discover(discover);
        self
    }

    /// Registers a handler built with its dependencies (test doubles). Its
    /// name is its type's path, as on [`EventBusBuilder::register_handler`].
    pub fn register_handler<E: DomainEvent, H: Handler<E>>(self, handler: H) -> Self {
        self.register_handler_named(std::any::type_name::<H>(), handler)
    }

    /// Registers a handler under an explicit name.
    pub fn register_handler_named<E: DomainEvent, H: Handler<E>>(
        mut self,
        name: impl Into<Cow<'static, str>>,
        handler: H,
    ) -> Self {
        let name = name.into();
        let handler = Arc::new(handler);
        self.registered.push(HandlerEntry::typed::<E, _>(
            name.clone(),
            Shared(Arc::clone(&handler)),
        ));
        self.builder = self.builder.register_handler_named(name, Shared(handler));
        self
    }

    /// Runs the handlers in `publish`, awaited, as local mode does (their
    /// outcomes are in the `PublishOutcome` the code under test gets).
    pub fn dispatch_in_process(mut self, yes: bool) -> Self {
        self.in_process = yes;
        self.builder = self.builder.dispatch_in_process(yes);
        self
    }

    /// Spawns the handlers in `publish` (async mode, `EVENT_BUS_ASYNC=true`);
    /// [`RecordingBus::settle`] waits for them. Implies
    /// [`dispatch_in_process`](Self::dispatch_in_process).
    pub fn async_handlers(mut self, yes: bool) -> Self {
        self.builder = self.builder.async_handlers(yes);
        if yes {
            self = self.dispatch_in_process(true);
        }
        self
    }

    /// How long a handler call may run before it is cancelled and counted
    /// as failed, as [`EventBusBuilder::handler_timeout`] (default 60 s; a
    /// test on a paused clock whose handler waits longer sets more).
    pub fn handler_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.builder = self.builder.handler_timeout(timeout);
        self
    }

    /// Acts as local mode (`EVENT_BUS_MODE=local`) as the code under test
    /// sees it: the handlers run in `publish`, awaited (as
    /// [`dispatch_in_process`](Self::dispatch_in_process)), and each
    /// outcome's delivery is [`Delivery::Stored`](crate::bus::Delivery::Stored),
    /// where the default (eventbridge mode) reports
    /// `Delivery::Published { remote_id: None }`. The events are recorded
    /// all the same.
    pub fn local_mode(mut self, yes: bool) -> Self {
        self.builder = self.builder.accepted_as_stored(yes);
        if yes {
            self = self.dispatch_in_process(true);
        }
        self
    }

    /// Builds the bus.
    ///
    /// # Errors
    ///
    /// [`BusError`] as
    /// [`EventBusBuilder::build`](crate::EventBusBuilder::build)'s: two event
    /// types with one name, a handler registered twice.
    pub fn build(self) -> Result<RecordingBus, BusError> {
        let log = self.log;
        let bus = self
            .builder
            .publisher(Arc::new(RecordingPublisher {
                log: Arc::clone(&log),
            }))
            .build()?;
        Ok(RecordingBus {
            bus,
            log,
            in_process: self.in_process,
            registered: self.registered.into(),
            discover: self.discover,
        })
    }
}
