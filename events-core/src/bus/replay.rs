//! The failover store: replaying it through the publisher
//! (`publish_from_failover`), the background [`Replayer`], and `consume`.

use std::future::Future;
use std::time::Duration;

use tracing::Instrument;

use super::publish::deliveries_of;
use super::{BusError, Delivery, EventBus};
use crate::envelope::{EventId, RawEvent};
use crate::store::StoredEvent;

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

impl EventBus {
    /// Re-sends up to `max` of the oldest stored events through the
    /// publisher, in order, removing each only after it was accepted.
    /// The events are claimed first ([`EventStore::claim`](crate::store::EventStore::claim)),
    /// so several replayers on one store (more instances, the `events` tool)
    /// never send an event at the same time; a replayer that dies leaves
    /// claims that expire.
    /// Permanent failures become dead letters after the configured number of
    /// attempts (3 by default).
    ///
    /// The future is `Send + 'static`.
    ///
    /// # Errors
    ///
    /// [`BusError::NoStore`] without a store, [`BusError::Store`] when the
    /// store fails; an event the remote bus refuses is not an error but in the
    /// report's `failed` (or `dead_lettered`).
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
        let pending = store.claim(max).await?;
        let mut report = ReplayReport::default();
        if pending.is_empty() {
            return Ok(report);
        }
        let span = tracing::info_span!("replay", count = pending.len());
        async {
            let raws: Vec<RawEvent> = pending.iter().map(|s| s.event.clone()).collect();
            let deliveries = deliveries_of(publisher.publish(&raws).await, raws.len());
            for (stored, delivery) in pending.iter().zip(deliveries) {
                let id = stored.event.id.clone();
                let (error, permanent) = match delivery {
                    Delivery::FailedOver { error } => (error, false),
                    Delivery::DeadLettered { error } => (error, true),
                    // Accepted by the remote bus.
                    _ => {
                        crate::metrics::replayed(stored.event.name.clone(), true);
                        report.sent.push(id);
                        continue;
                    }
                };
                let dead = permanent && stored.attempts + 1 >= self.inner.max_permanent_failures;
                tracing::warn!(event = %stored.event.name, id = %id, %error, dead, "replay failed");
                store.record_failure(id.clone(), error, dead).await?;
                crate::metrics::replayed(stored.event.name.clone(), false);
                if dead {
                    crate::metrics::dead_lettered(stored.event.name.clone());
                    report.dead_lettered.push(id);
                } else {
                    report.failed.push(id);
                }
            }
            store.ack(report.sent.clone()).await?;
            tracing::info!(
                sent = report.sent.len(),
                failed = report.failed.len(),
                dead = report.dead_lettered.len(),
                "replay done"
            );
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
    ///
    /// # Errors
    ///
    /// [`BusError::NoStore`] when the bus has no store.
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
                    if let Some(store) = bus.store() {
                        if let Err(error) =
                            crate::metrics::record_store_gauges(store.as_ref()).await
                        {
                            tracing::debug!(%error, "store gauges not updated");
                        }
                    }
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
            let report = self.publish_from_failover(batch).await.inspect_err(|e| {
                tracing::warn!(error = %crate::error::one_line(e), "background replay failed");
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
    ///
    /// # Errors
    ///
    /// [`BusError::NoStore`] without a store, [`BusError::Store`] when the
    /// store fails.
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
