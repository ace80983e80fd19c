//! Dispatch: running the handlers of an event, in order, each isolated from
//! the others' errors and panics; events received from elsewhere; spawned
//! handler work (async mode) and its shutdown.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use tracing::Instrument;

use super::{BusError, EventBus, HandlerOutcome, HandlerStatus, PublishOutcome};
use crate::envelope::SharedEvent;
use crate::envelope::{AnyEvent, EventId, RawEvent};
use crate::handler::HandlerEntry;

/// A received event, decoded, with the handlers it goes to.
struct Prepared {
    handlers: Arc<[HandlerEntry]>,
    event: SharedEvent,
    name: &'static str,
}

impl EventBus {
    /// Runs (or, in async mode, spawns) the handlers of a published event.
    pub(super) async fn dispatch(&self, event: &AnyEvent, out: &mut PublishOutcome) {
        let Some(handlers) = self.inner.handlers.get(event.name()) else {
            return;
        };
        if self.inner.config.async_handlers {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                out.spawned = handlers.len();
                let handlers = Arc::clone(handlers);
                let shared = event.shared.clone();
                let name = event.name();
                let id = event.id().clone();
                // Local mode: the event joins the handled journal once its
                // spawned handlers are done.
                let journal = match (&self.inner.publisher, &self.inner.store) {
                    (None, Some(store)) => Some(Arc::clone(store)),
                    _ => None,
                };
                let task = async move {
                    run_handlers(&handlers, shared, name, &id).await;
                    if let Some(store) = journal {
                        if let Err(error) = store.mark_handled(vec![id]).await {
                            tracing::warn!(%error, "handled event not marked in the store");
                        }
                    }
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
                Some(Prepared {
                    handlers,
                    event,
                    name,
                }) => Ok(run_handlers(&handlers, event, name, &id).await),
                None => Ok(Vec::new()),
            }
        }
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
