//! Local mode at start: the handlers of events an earlier run stored and never finished, run once each.

use super::publish::{failure_text, mark_handled, record_failures};
use super::{BusError, EventBus};

/// How many unfinished events one claim takes.
const BATCH: usize = 64;

impl EventBus {
    /// Runs, once each, the handlers of the local-mode events that an
    /// earlier run of a program on this store stored and never finished
    /// handling (an async bus dropped without
    /// [`shutdown`](EventBus::shutdown), a killed process), then marks them
    /// handled, a failed handler's error kept on its event as in any
    /// local-mode publish. Returns how many events ran.
    ///
    /// [`build`](crate::EventBusBuilder::build) starts this for you, as a
    /// task [`shutdown`](EventBus::shutdown) waits for, when the store has
    /// such events and a tokio runtime is running; call it yourself on a bus
    /// built outside one. Only a store opened while no other process had it
    /// open has any (see
    /// [`EventStore::claim_unfinished_local`](crate::store::EventStore::claim_unfinished_local)).
    /// The `events` tool cannot run them: it does not link the program's
    /// handlers. An event this build cannot decode becomes a dead letter,
    /// with the reason.
    ///
    /// # Errors
    ///
    /// [`BusError::Store`] when the store fails; the events not yet run stay
    /// pending for the next start.
    pub async fn run_unfinished(&self) -> Result<usize, BusError> {
        let Some(store) = self.journal().cloned() else {
            return Ok(0);
        };
        let mut ran = 0;
        loop {
            let batch = store.claim_unfinished_local(BATCH).await?;
            if batch.is_empty() {
                break;
            }
            for stored in batch {
                let id = stored.event.id.clone();
                match self.receive_raw(&stored.event).dispatch().await {
                    Ok(outcomes) => {
                        let outcomes = outcomes.into_vec();
                        let failed = failure_text(outcomes.iter()).map(|e| (id.clone(), e));
                        record_failures(store.as_ref(), failed.into_iter().collect()).await;
                        mark_handled(store.as_ref(), vec![id]).await;
                    }
                    Err(error) => {
                        tracing::error!(
                            event = %stored.event.name,
                            %id,
                            %error,
                            "an unfinished local-mode event cannot be dispatched; kept as a dead letter"
                        );
                        store.record_failure(id, error.to_string(), true).await?;
                    }
                }
                ran += 1;
            }
        }
        if ran > 0 {
            tracing::info!(
                events = ran,
                "ran the handlers of local-mode events an earlier run left unfinished"
            );
        }
        Ok(ran)
    }
}

/// Starts [`EventBus::run_unfinished`] when the store found `unfinished`
/// events at open: as a task of the bus on the running tokio runtime, or,
/// without one, says how to run them.
pub(super) fn start(bus: &EventBus, unfinished: u64) {
    if unfinished == 0 || bus.journal().is_none() {
        return;
    }
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            let task_bus = bus.clone();
            bus.inner.tasks.spawn_on(
                async move {
                    if let Err(error) = task_bus.run_unfinished().await {
                        tracing::error!(%error, "the handlers of unfinished local-mode events did not all run; the rest stay pending for the next start");
                    }
                },
                &runtime,
            );
        }
        Err(_) => tracing::warn!(
            events = unfinished,
            "local-mode events an earlier run left unfinished, and no tokio runtime to run their handlers on: \
             call `bus.run_unfinished().await`"
        ),
    }
}
