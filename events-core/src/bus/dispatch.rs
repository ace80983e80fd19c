//! Dispatch: running the handlers of an event, in order, each isolated from
//! the others' errors, panics and hangs (the handler timeout); events
//! received from elsewhere; spawned handler work (async mode) and its
//! shutdown.

use std::borrow::Cow;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::Either;
use tracing::Instrument;

use super::outcome::{Outcomes, Record};
use super::publish::{failure_text, mark_handled, record_failures};
use super::{BusError, DispatchOutcome, EventBus, HandlerOutcome, HandlerStatus, PublishOutcome};
use crate::attributes::check_object;
use crate::envelope::SharedEvent;
use crate::envelope::{EventId, RawEvent};
use crate::error::DecodeError;
use crate::handler::HandlerEntry;
use crate::trace::TraceContext;
use crate::wire;

/// A received event (from SQS, Lambda, HTTP), read and decoded for this
/// bus's handlers: what a consumer needs to route it, skip the handlers that
/// already succeeded, and run the others. Made by [`EventBus::receive`] or
/// [`EventBus::receive_raw`]; run by [`Received::dispatch`] or
/// [`Received::dispatch_skipping`].
pub struct Received {
    id: EventId,
    name: Cow<'static, str>,
    route: Option<ReceivedRoute>,
    /// The trace context it carried (`_trace`, SPEC §13).
    trace: Option<TraceContext>,
}

/// The handlers of a received event and the event decoded for them (or
/// why it could not be).
struct ReceivedRoute {
    handlers: Arc<[HandlerEntry]>,
    succeeded: Arc<[HandlerOutcome]>,
    event: Result<SharedEvent, BusError>,
    name: &'static str,
    timeout: Duration,
}

impl std::fmt::Debug for Received {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Received")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("handlers", &self.handler_names().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Received {
    /// The event's id.
    pub fn id(&self) -> &EventId {
        &self.id
    }

    /// The event's name (`detail-type`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The trace context of its publish, if it carried one (`_trace`).
    pub fn trace(&self) -> Option<&TraceContext> {
        self.trace.as_ref()
    }

    /// The span to process it in, following OpenTelemetry's messaging
    /// conventions: `consume` (event name and id as fields), exported as
    /// `process {event name}` with `messaging.system`,
    /// `messaging.operation.name` and `.type` (`process`),
    /// `messaging.message.id` (the event id) and
    /// `messaging.destination.name` (`destination`, when given: the queue,
    /// the function, the route). With the `otel` feature, a child of the span
    /// that published the event when it carried its context. Enter it (or
    /// `.instrument()` with it) around the work; the consumers of
    /// `events-eventbridge` do.
    pub fn span(&self, destination: Option<&str>) -> tracing::Span {
        self.span_of("aws.eventbridge", destination)
    }

    /// [`span`](Self::span) with another `messaging.system` (a relay's local
    /// bus: `events.local`).
    pub(crate) fn span_of(&self, system: &'static str, destination: Option<&str>) -> tracing::Span {
        let span = tracing::info_span!(
            "consume",
            event = %self.name,
            id = %self.id,
            otel.name = tracing::field::Empty,
            otel.kind = "consumer",
            messaging.system = system,
            messaging.operation.name = "process",
            messaging.operation.type = "process",
            messaging.destination.name = destination,
            messaging.message.id = %self.id,
        );
        if !span.is_disabled() {
            span.record("otel.name", format!("process {}", self.name));
            crate::trace::adopt(&span, self.trace.as_ref());
        }
        span
    }

    /// Whether any handler here handles it.
    pub fn is_routed(&self) -> bool {
        self.route.is_some()
    }

    /// Names of its handlers here, in dispatch order (none when unrouted).
    pub fn handler_names(&self) -> impl Iterator<Item = &str> {
        self.route
            .iter()
            .flat_map(|r| r.handlers.iter().map(|h| h.name.as_ref()))
    }

    /// Runs its handlers, as [`EventBus::dispatch_raw`] does.
    ///
    /// # Errors
    ///
    /// [`BusError::Decode`] when the event has handlers here and its attributes
    /// are not what its type reads; [`BusError::UnknownEvent`] when it has
    /// handlers but no linked type. A handler's failure is not an error: it is
    /// in the outcome.
    pub fn dispatch(
        self,
    ) -> impl Future<Output = Result<DispatchOutcome, BusError>> + Send + 'static {
        self.dispatch_skipping(|_| false)
    }

    /// Runs its handlers but those whose names `skip` accepts, as
    /// [`EventBus::dispatch_raw_skipping`] does: an event that could not be
    /// decoded for its handlers is an error (even when all are skipped); one
    /// nobody handles runs nothing.
    ///
    /// # Errors
    ///
    /// As [`dispatch`](Self::dispatch)'s.
    pub fn dispatch_skipping(
        self,
        skip: impl Fn(&str) -> bool,
    ) -> impl Future<Output = Result<DispatchOutcome, BusError>> + Send + 'static {
        let id = self.id;
        let (handlers, succeeded, event, name, timeout) = match self.route {
            None => return Either::Left(std::future::ready(Ok(DispatchOutcome::default()))),
            Some(ReceivedRoute { event: Err(e), .. }) => {
                return Either::Left(std::future::ready(Err(e)))
            }
            Some(ReceivedRoute {
                handlers,
                succeeded,
                event: Ok(event),
                name,
                timeout,
            }) => (handlers, succeeded, event, name, timeout),
        };
        let (handlers, mut outcomes) = if handlers.iter().any(|h| skip(&h.name)) {
            let handlers: Arc<[HandlerEntry]> = handlers
                .iter()
                .filter(|h| !skip(&h.name))
                .cloned()
                .collect();
            let outcomes = Outcomes::List(Vec::with_capacity(handlers.len()));
            (handlers, outcomes)
        } else {
            // All of the route's handlers, in its order: what `Outcomes`
            // needs.
            (handlers, Outcomes::succeeding(&succeeded))
        };
        // The error and empty cases are ready at once: the future that runs
        // handlers does not carry them.
        Either::Right(async move {
            run_handlers(&handlers, event, name, &id, timeout, &mut outcomes).await;
            Ok(DispatchOutcome(outcomes))
        })
    }
}

impl EventBus {
    /// Runs (or, in async mode, spawns) the handlers of the published
    /// `event` that `out` reports on.
    pub(super) async fn dispatch(&self, event: SharedEvent, out: &mut PublishOutcome) {
        let Some(route) = self.inner.handlers.get(out.name) else {
            return;
        };
        let handlers = &route.handlers;
        // With handlers of newer versions, the event and its upcasts.
        let event = route.published(event);
        let timeout = self.inner.config.handler_timeout;
        if self.inner.config.async_handlers {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                out.spawned = handlers.len();
                let handlers = Arc::clone(handlers);
                let name = out.name;
                let id = out.id.clone();
                let journal = self.journal().cloned();
                let task = async move {
                    let mut unfinished = Unfinished {
                        name,
                        id: &id,
                        handlers: handlers.len(),
                        done: false,
                    };
                    let mut outcomes = Vec::new();
                    run_handlers(&handlers, event, name, &id, timeout, &mut outcomes).await;
                    unfinished.done = true;
                    drop(unfinished);
                    if let Some(store) = journal {
                        // Local mode: a failure stays on the event (store).
                        let failed = failure_text(outcomes.iter()).map(|e| (id.clone(), e));
                        record_failures(store.as_ref(), failed.into_iter().collect()).await;
                        mark_handled(store.as_ref(), vec![id]).await;
                    }
                };
                self.inner.tasks.spawn_on(task.in_current_span(), &runtime);
                return;
            }
            warn_no_runtime(out.name);
        }
        // All of the route's handlers, in its order: what `Outcomes` needs.
        out.handlers = Outcomes::succeeding(&route.succeeded);
        run_handlers(
            handlers,
            event,
            out.name,
            &out.id,
            timeout,
            &mut out.handlers,
        )
        .await;
    }

    /// Dispatches an event received from elsewhere (SQS, Lambda, HTTP) to
    /// the in-process handlers of its name. An event nobody handles is not an
    /// error: the result is empty.
    ///
    /// The event is decoded before the future is returned, which is
    /// `Send + 'static`.
    ///
    /// # Errors
    ///
    /// As [`Received::dispatch`]'s.
    pub fn dispatch_raw(
        &self,
        raw: &RawEvent,
    ) -> impl Future<Output = Result<Vec<HandlerOutcome>, BusError>> + Send + 'static {
        let run = self.receive_raw(raw).dispatch();
        async move { run.await.map(DispatchOutcome::into_vec) }
    }

    /// As [`dispatch_raw`](Self::dispatch_raw), without the handlers whose
    /// names `skip` accepts: what a consumer with deduplication runs for a
    /// redelivered event whose other handlers already succeeded. An event
    /// whose handlers are all skipped is decoded and runs nothing.
    ///
    /// # Errors
    ///
    /// As [`Received::dispatch`]'s.
    pub fn dispatch_raw_skipping(
        &self,
        raw: &RawEvent,
        skip: impl Fn(&str) -> bool,
    ) -> impl Future<Output = Result<Vec<HandlerOutcome>, BusError>> + Send + 'static {
        let run = self.receive_raw(raw).dispatch_skipping(skip);
        async move { run.await.map(DispatchOutcome::into_vec) }
    }

    /// Prepares a received event for this bus's handlers: finds them and
    /// decodes the event for them (a decoding error is kept, and returned by
    /// [`Received::dispatch`]).
    pub fn receive_raw(&self, raw: &RawEvent) -> Received {
        let Some((&name, route)) = self.inner.handlers.get_key_value(raw.name.as_str()) else {
            tracing::debug!(event = %raw.name, id = %raw.id, "no handler for event");
            return Received {
                id: raw.id.clone(),
                name: Cow::Owned(raw.name.clone()),
                route: None,
                trace: raw.trace.clone(),
            };
        };
        let event = match route.decode_parts(&raw.id, raw.occurred_on, &raw.attributes) {
            Some(decoded) => decoded.map_err(BusError::from),
            None => Err(BusError::UnknownEvent {
                name: raw.name.clone(),
            }),
        };
        Received {
            id: raw.id.clone(),
            name: Cow::Borrowed(name),
            route: Some(ReceivedRoute {
                handlers: Arc::clone(&route.handlers),
                succeeded: Arc::clone(&route.succeeded),
                event,
                name,
                timeout: self.inner.config.handler_timeout,
            }),
            trace: raw.trace.clone(),
        }
    }

    /// Reads a received EventBridge envelope (an SQS message body, a
    /// Lambda or HTTP request body) and prepares its event for this bus's
    /// handlers: what [`wire::decode_envelope`] followed by
    /// [`receive_raw`](Self::receive_raw) does, with the same errors, in
    /// one pass over the body and without an intermediate [`RawEvent`]: the
    /// attributes of an event with handlers here are read once, straight
    /// into its type.
    ///
    /// # Errors
    ///
    /// A [`DecodeError`] naming the field at fault when `body` is not an
    /// EventBridge envelope with a valid detail.
    pub fn receive(&self, body: &str) -> Result<Received, DecodeError> {
        // Anything the one-pass reader does not take, the full decoder
        // refuses with its reason (or takes: then it is used).
        let slow = || wire::decode_envelope(body).map(|envelope| self.receive_raw(&envelope.event));
        let Some(read) = wire::read_envelope(body) else {
            return slow();
        };
        let Some((&name, route)) = self.inner.handlers.get_key_value(&*read.name) else {
            // Nothing decodes them for a handler: check them as the full
            // decoder does.
            if check_object(&read.attributes).is_err() {
                return slow();
            }
            tracing::debug!(event = %read.name, id = %read.id, "no handler for event");
            return Ok(Received {
                id: read.id,
                name: Cow::Owned(read.name.into_owned()),
                route: None,
                trace: read.trace,
            });
        };
        let event = match route.decode_parts(&read.id, read.occurred_on, &read.attributes) {
            Some(decoded) => {
                match decoded {
                    Ok(event) => Ok(event),
                    // Attributes that are no JSON object are refused by the full
                    // decoder, before any routing; others fail for the type.
                    Err(e) => match check_object(&read.attributes) {
                        Ok(()) => Err(BusError::from(e)),
                        Err(_) => return slow(),
                    },
                }
            }
            None => Err(BusError::UnknownEvent {
                name: name.to_owned(),
            }),
        };
        Ok(Received {
            id: read.id,
            name: Cow::Borrowed(name),
            route: Some(ReceivedRoute {
                handlers: Arc::clone(&route.handlers),
                succeeded: Arc::clone(&route.succeeded),
                event,
                name,
                timeout: self.inner.config.handler_timeout,
            }),
            trace: read.trace,
        })
    }

    /// Waits (at most `timeout`) for spawned handler work to finish. Call it
    /// before exiting in async mode, so no handler work is silently dropped.
    ///
    /// # Errors
    ///
    /// [`BusError::ShutdownTimeout`] when handler tasks are still running after
    /// `timeout`.
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

/// Spawned handler work of one event; dropped before it finished (the
/// runtime shut down with it still running), it says so.
struct Unfinished<'a> {
    name: &'static str,
    id: &'a EventId,
    handlers: usize,
    done: bool,
}

impl Drop for Unfinished<'_> {
    fn drop(&mut self) {
        if !self.done {
            tracing::warn!(
                event = self.name,
                id = %self.id,
                handlers = self.handlers,
                "spawned handler work was dropped before it finished (the runtime shut down); \
                 call `bus.shutdown(timeout)` before exiting"
            );
        }
    }
}

/// Async mode with no tokio runtime to spawn on (publishing from a plain
/// thread or another executor): the handlers run inline, in `publish`, and
/// a handler that uses tokio fails. Said once per process, at warn.
fn warn_no_runtime(event: &'static str) {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if !WARNED.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            event,
            "async mode (EVENT_BUS_ASYNC) but no tokio runtime here: handlers run inline, in `publish`, \
             and handlers that use tokio (timers, I/O, spawn) fail; publish from within a tokio runtime \
             (e.g. `#[tokio::main]`) (said once)"
        );
    } else {
        tracing::debug!(event, "no tokio runtime: handlers run inline");
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

/// Runs every handler of one event in order, isolating errors, panics and
/// calls running past `timeout`, inside a `dispatch` span (event name, id)
/// with one `handle` span per handler (event name, id, handler name), and
/// records their outcomes in `outcomes`. The last handler gets `event`
/// itself, the others a clone.
///
/// The rest is borrowed: its future stays small, and so does every publish
/// future that awaits it.
async fn run_handlers(
    handlers: &[HandlerEntry],
    event: SharedEvent,
    name: &'static str,
    id: &EventId,
    timeout: Duration,
    outcomes: &mut impl Record,
) {
    let Some((last, others)) = handlers.split_last() else {
        return;
    };
    let dispatch =
        tracing::info_span!("dispatch", event = name, id = %id, handlers = handlers.len());
    for (index, entry) in others.iter().enumerate() {
        let span = tracing::info_span!(parent: &dispatch, "handle", event = name, id = %id, handler = %entry.name);
        let status = run_one(entry, event.clone(), id, timeout, span).await;
        outcomes.record(index, entry, status);
    }
    let span = tracing::info_span!(parent: &dispatch, "handle", event = name, id = %id, handler = %last.name);
    let status = run_one(last, event, id, timeout, span).await;
    outcomes.record(others.len(), last, status);
}

/// Runs one handler in its `handle` span: starts it (a panic there is
/// caught too), polls its future with panics caught and at most `timeout`
/// long, and logs what happened, all inside the span.
fn run_one<'a>(
    entry: &'a HandlerEntry,
    event: SharedEvent,
    id: &'a EventId,
    timeout: Duration,
    span: tracing::Span,
) -> Call<'a> {
    Call {
        entry,
        id,
        timeout,
        started: std::time::Instant::now(),
        deadline: None,
        span,
        state: CallState::Start(event),
    }
}

/// One handler call in progress. Written out by hand rather than as nested
/// `async` blocks, `Instrumented`, `CatchUnwind` and `Timeout`: one small
/// state machine per call, polled once when the handler does not wait (its
/// timer is set only when the handler first waits).
struct Call<'a> {
    entry: &'a HandlerEntry,
    id: &'a EventId,
    timeout: Duration,
    /// When the call started (the `events_handler_duration_seconds` metric).
    started: std::time::Instant,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    span: tracing::Span,
    state: CallState,
}

enum CallState {
    Start(SharedEvent),
    Running(crate::handler::private::HandlerFuture),
    Done,
}

impl Future for Call<'_> {
    type Output = HandlerStatus;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<HandlerStatus> {
        use std::task::Poll;
        let this = &mut *self;
        let _entered = this.span.enter();
        let (entry, id) = (this.entry, this.id);
        let started = this.started;
        let log = |status| {
            crate::metrics::handler_call(
                entry.event_name,
                entry.name.clone(),
                &status,
                started.elapsed(),
            );
            logged(entry, id, status)
        };
        let mut future = match std::mem::replace(&mut this.state, CallState::Done) {
            CallState::Start(event) => {
                match std::panic::catch_unwind(AssertUnwindSafe(|| entry.handler.call(event))) {
                    Ok(Ok(future)) => future,
                    Ok(Err(_)) => {
                        return Poll::Ready(log(HandlerStatus::Failed(format!(
                        "internal error: handler `{}` expects `{}`, which is not the type of `{}`",
                        entry.name, entry.event_type_name, entry.event_name
                    ))))
                    }
                    Err(panic) => {
                        return Poll::Ready(log(HandlerStatus::Panicked(panic_message(&*panic))))
                    }
                }
            }
            CallState::Running(future) => future,
            CallState::Done => {
                return Poll::Ready(HandlerStatus::Failed(
                    "internal error: a finished handler call was polled again".to_owned(),
                ))
            }
        };
        let status = match std::panic::catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
            Ok(Poll::Pending) => {
                if this.deadline.is_none() {
                    this.deadline = deadline(this.timeout);
                }
                let expired = this
                    .deadline
                    .as_mut()
                    .is_some_and(|d| d.as_mut().poll(cx).is_ready());
                if !expired {
                    this.state = CallState::Running(future);
                    return Poll::Pending;
                }
                // Cancelled: its future is dropped here, inside the span.
                drop(future);
                HandlerStatus::Failed(format!(
                    "timed out after {:?} (the handler timeout, EVENT_BUS_HANDLER_TIMEOUT); the call was cancelled",
                    this.timeout
                ))
            }
            Ok(Poll::Ready(Ok(()))) => HandlerStatus::Succeeded,
            Ok(Poll::Ready(Err(e))) => HandlerStatus::Failed(e.to_string()),
            Err(panic) => HandlerStatus::Panicked(panic_message(&*panic)),
        };
        Poll::Ready(log(status))
    }
}

/// The timer of a handler call that waits: `timeout` from now, on the
/// tokio runtime's clock. None where there is no tokio timer (no runtime,
/// or one built without `enable_time`): the call then runs unbounded, as
/// a warning says once.
fn deadline(timeout: Duration) -> Option<Pin<Box<tokio::time::Sleep>>> {
    static NO_TIMER: AtomicBool = AtomicBool::new(false);
    if NO_TIMER.load(Ordering::Relaxed) {
        return None;
    }
    if tokio::runtime::Handle::try_current().is_ok() {
        // A runtime without timers panics here (tokio has no way to ask).
        if let Ok(sleep) = std::panic::catch_unwind(|| Box::pin(tokio::time::sleep(timeout))) {
            return Some(sleep);
        }
    }
    if !NO_TIMER.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            "a handler waits outside a tokio runtime with timers: the handler timeout \
             (EVENT_BUS_HANDLER_TIMEOUT) is not applied to it (said once)"
        );
    }
    None
}

/// Logs what a handler call came to (inside its span, and with the event
/// name, id and handler on the line itself: a `RUST_LOG=warn` filter drops
/// the info-level spans).
fn logged(entry: &HandlerEntry, id: &EventId, status: HandlerStatus) -> HandlerStatus {
    let (event, handler) = (entry.event_name, &*entry.name);
    match &status {
        HandlerStatus::Succeeded => tracing::debug!("handler succeeded"),
        HandlerStatus::Failed(error) => {
            tracing::error!(event, id = %id, handler, %error, "handler failed")
        }
        HandlerStatus::Panicked(panic) => {
            tracing::error!(event, id = %id, handler, %panic, "handler panicked")
        }
    }
    status
}
