//! Dispatch: running the handlers of an event, in order, each isolated from
//! the others' errors and panics; events received from elsewhere; spawned
//! handler work (async mode) and its shutdown.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use tracing::Instrument;

use super::publish::mark_handled;
use super::{BusError, EventBus, HandlerOutcome, HandlerStatus, PublishOutcome};
use crate::envelope::SharedEvent;
use crate::envelope::{EventId, RawEvent};
use crate::handler::HandlerEntry;

/// A received event, decoded, with the handlers it goes to.
struct Prepared {
    handlers: Arc<[HandlerEntry]>,
    event: SharedEvent,
    name: &'static str,
}

impl EventBus {
    /// Runs (or, in async mode, spawns) the handlers of the published
    /// `event` that `out` reports on.
    pub(super) async fn dispatch(&self, event: SharedEvent, out: &mut PublishOutcome) {
        let Some(handlers) = self.inner.handlers.get(out.name) else {
            return;
        };
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
                    run_handlers(&handlers, event, name, &id, &mut Vec::new()).await;
                    unfinished.done = true;
                    drop(unfinished);
                    if let Some(store) = journal {
                        mark_handled(store.as_ref(), vec![id]).await;
                    }
                };
                self.inner.tasks.spawn_on(task.in_current_span(), &runtime);
                return;
            }
            tracing::debug!("no tokio runtime: handlers run inline");
        }
        out.handlers.reserve_exact(handlers.len());
        run_handlers(handlers, event, out.name, &out.id, &mut out.handlers).await;
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
        run_prepared(prepared, raw.id.clone())
    }

    /// As [`dispatch_raw`](Self::dispatch_raw), without the handlers whose
    /// names `skip` accepts: what a consumer with deduplication runs for a
    /// redelivered event whose other handlers already succeeded. An event
    /// whose handlers are all skipped is decoded and runs nothing.
    pub fn dispatch_raw_skipping(
        &self,
        raw: &RawEvent,
        skip: impl Fn(&str) -> bool,
    ) -> impl Future<Output = Result<Vec<HandlerOutcome>, BusError>> + Send + 'static {
        let prepared = self.prepare_raw(raw).map(|prepared| {
            prepared.map(|p| Prepared {
                handlers: p
                    .handlers
                    .iter()
                    .filter(|h| !skip(&h.name))
                    .cloned()
                    .collect(),
                ..p
            })
        });
        run_prepared(prepared, raw.id.clone())
    }

    /// The handlers of a received event and the event decoded for them.
    fn prepare_raw(&self, raw: &RawEvent) -> Result<Option<Prepared>, BusError> {
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
        Ok(Some(Prepared {
            handlers: Arc::clone(handlers),
            event: ty.decode(raw)?,
            name: ty.name,
        }))
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

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

/// Runs the handlers of a received event that `EventBus::prepare_raw`
/// found (none when nobody handles it), for `dispatch_raw` and
/// `dispatch_raw_skipping`.
async fn run_prepared(
    prepared: Result<Option<Prepared>, BusError>,
    id: EventId,
) -> Result<Vec<HandlerOutcome>, BusError> {
    let Some(Prepared {
        handlers,
        event,
        name,
    }) = prepared?
    else {
        return Ok(Vec::new());
    };
    let mut outcomes = Vec::with_capacity(handlers.len());
    run_handlers(&handlers, event, name, &id, &mut outcomes).await;
    Ok(outcomes)
}

/// Runs every handler of one event in order, isolating errors and panics,
/// inside a `dispatch` span (event name, id) with one `handle` span per
/// handler (event name, id, handler name), and appends their outcomes to
/// `outcomes`. The last handler gets `event` itself, the others a clone.
///
/// The rest is borrowed: its future stays small, and so does every publish
/// future that awaits it.
async fn run_handlers(
    handlers: &[HandlerEntry],
    event: SharedEvent,
    name: &'static str,
    id: &EventId,
    outcomes: &mut Vec<HandlerOutcome>,
) {
    let Some((last, others)) = handlers.split_last() else {
        return;
    };
    let dispatch =
        tracing::info_span!("dispatch", event = name, id = %id, handlers = handlers.len());
    for entry in others {
        let span = tracing::info_span!(parent: &dispatch, "handle", event = name, id = %id, handler = %entry.name);
        let status = run_one(entry, event.clone()).instrument(span).await;
        outcomes.push(HandlerOutcome {
            handler: entry.name.clone(),
            status,
        });
    }
    let span = tracing::info_span!(parent: &dispatch, "handle", event = name, id = %id, handler = %last.name);
    let status = run_one(last, event).instrument(span).await;
    outcomes.push(HandlerOutcome {
        handler: last.name.clone(),
        status,
    });
}

/// Runs one handler, catching its panic, and logs what happened.
async fn run_one(entry: &HandlerEntry, event: SharedEvent) -> HandlerStatus {
    let status = match std::panic::catch_unwind(AssertUnwindSafe(|| entry.handler.call(event))) {
        Ok(Ok(future)) => match AssertUnwindSafe(future).catch_unwind().await {
            Ok(Ok(())) => HandlerStatus::Succeeded,
            Ok(Err(e)) => HandlerStatus::Failed(e.to_string()),
            Err(panic) => HandlerStatus::Panicked(panic_message(&*panic)),
        },
        Ok(Err(_)) => HandlerStatus::Failed(format!(
            "internal error: handler `{}` expects `{}`, which is not the type of `{}`",
            entry.name, entry.event_type_name, entry.event_name
        )),
        Err(panic) => HandlerStatus::Panicked(panic_message(&*panic)),
    };
    match &status {
        HandlerStatus::Succeeded => tracing::debug!("handler succeeded"),
        HandlerStatus::Failed(error) => tracing::error!(%error, "handler failed"),
        HandlerStatus::Panicked(panic) => tracing::error!(%panic, "handler panicked"),
    }
    status
}
