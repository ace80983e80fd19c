//! The relay: an owned background task that hands committed outbox rows to an
//! [`EventBus`], in order per aggregate, shared safely by many relays.
//!
//! # How rows are claimed
//!
//! A relay works in rounds, each one transaction: it locks up to
//! [`batch`](RelayOptions::batch) waiting rows (`FOR UPDATE SKIP LOCKED`),
//! hands them to the bus ([`EventBus::forward`]), records what became of
//! each, and commits. Only the **head** of each aggregate is claimed: the
//! row with the lowest `seq` among that aggregate's waiting rows (rows
//! without a key are all heads). So:
//!
//! - no row is handed to the bus by two relays at once: a claimed row is
//!   locked until its round commits, and the others skip it;
//! - within an aggregate, a later row is never handed over before an earlier
//!   one was accepted: while row 1 waits (locked by a relay, or backing off
//!   after a retryable failure), row 2 is no head, so no relay takes it
//!   (claiming rows alone with `SKIP LOCKED` would let a second relay take
//!   row 2 while row 1 is locked);
//! - different aggregates go in parallel: a round takes the heads of many,
//!   and several relays (or [`workers`](RelayOptions::workers)) take
//!   different ones.
//!
//! The claim walks the waiting rows in `seq` order on their index and skips
//! those that are not heads, each skip one index probe: a backlog of many
//! rows of a *single* aggregate is relayed one row a round and costs every
//! claim a probe per row of it. Aggregates with few events each, the usual
//! case, cost nothing of the kind. The probe can only be answered by
//! `messages_pending_aggregate`, whatever the planner's statistics say (see
//! the schema's docs: statistics taken while every row was published once
//! made it walk `messages_pending` instead, seconds a claim on a backlog),
//! and the relay also runs `ANALYZE` on the outbox table at start and at
//! each cleanup while it has no statistics at all.
//!
//! A relay that dies (killed, its connection cut) loses its locks with its
//! session, and its rows are claimed again by the next round anywhere: at
//! least once, so an event accepted by the bus just before the crash, but
//! not yet marked, is handed over again. A relay that hangs loses them when
//! the server ends its session, [`lease`](RelayOptions::lease) plus a
//! quarter (at least 1 s) after its last statement; the relay itself gives a
//! hand-off at most the lease, then counts it as a retryable failure, so its
//! session is never ended under a hand-off still running. (A relay whose
//! whole process is frozen past that, and then thaws, may still finish the
//! hand-off it was in while another relay has taken the row: at least once
//! again; its mark then fails.)
//!
//! A relay's marks commit with the server's `synchronous_commit` (durable
//! before they are visible): once a row is seen published it stays so, even
//! across a server crash. [`async_commit`](RelayOptions::async_commit) trades
//! that for speed (no disk flush per round): a server crash may then forget
//! the marks of the last fraction of a second, and those rows are handed
//! over again, possibly after later rows of their aggregate that were
//! accepted meanwhile (duplicates, which consumers deduplicate by id);
//! nothing is lost either way.
//!
//! # What each outcome becomes
//!
//! | the bus said | the row |
//! | --- | --- |
//! | accepted | marked published (`published_at`), removed after the [retention](RelayOptions::retention) (at once with a retention of zero) |
//! | a retryable error (throttling, an outage), or no answer within the lease | stays waiting, `available_at` pushed back by the backoff: [`retry_backoff`](RelayOptions::retry_backoff) doubled per attempt, ±25 % jitter, at most [`max_backoff`](RelayOptions::max_backoff); the rows behind it in its aggregate wait with it, other aggregates flow |
//! | a permanent error (too large, malformed, access denied), or a detail that cannot be read | becomes a **dead letter** (`dead_at`, error, attempts, last attempt), listed by [`list_dead_letters`](crate::list_dead_letters), put back by [`requeue`](crate::requeue) |
//!
//! A dead letter does **not** hold back the later rows of its aggregate
//! (SPEC §10: dead letters never block the rows behind them): the next row
//! becomes the head and is sent. A requeued dead letter is then sent after
//! rows that followed it.
//!
//! # Waking up
//!
//! Writers `NOTIFY` on the channel [`CHANNEL`](crate::CHANNEL) in their
//! transaction, delivered on commit; the relay `LISTEN`s on its own
//! connection and starts a round at once (but after a round whose every
//! row was refused for now, as in an outage: then the next round waits for
//! the earliest retry, at most the poll interval, so a relay facing a down
//! bus runs one round per interval rather than one per commit). It also
//! polls every [`poll_interval`](RelayOptions::poll_interval), so a notification lost
//! while its connection was down delays nothing for longer than that. The
//! listener reconnects by itself (from 100 ms, doubling, up to 10 s), and so
//! do the rounds: a database restart costs a few failed rounds (logged at
//! `warn`), nothing more.

use std::future::Future;
use std::sync::Arc;

use events_core::EventBus;
use sqlx::PgPool;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::backoff;
use crate::error::OutboxError;
use events_core::__private::one_line;

mod cleanup;
mod options;
mod round;
mod wake;

pub use options::RelayOptions;

#[doc(hidden)]
pub use round::APPLICATION_NAME;
pub(crate) use round::CLAIM;

/// A running relay (see the [module docs](self)). Stop it with
/// [`Relay::stop`]; dropping the handle stops it too, without waiting.
#[derive(Debug)]
pub struct Relay {
    token: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Relay {
    /// Starts a relay on `pool` handing rows to `bus`: its workers, its
    /// listener and its cleanup, as tasks owned by the returned handle. Run
    /// [`migrate`](crate::migrate) first.
    ///
    /// ```no_run
    /// # async fn start(pool: sqlx::PgPool, bus: events_core::EventBus) -> Result<(), events_outbox::OutboxError> {
    /// use events_outbox::{Relay, RelayOptions};
    ///
    /// events_outbox::migrate(&pool).await?;
    /// let relay = Relay::spawn(pool, bus, RelayOptions::default());
    /// // ... serve ...
    /// relay.stop().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime (as `tokio::spawn`).
    pub fn spawn(pool: PgPool, bus: EventBus, options: RelayOptions) -> Relay {
        let options = Arc::new(RelayOptions {
            batch: options.batch.max(1),
            workers: options.workers.max(1),
            ..options
        });
        if !bus.config().enabled {
            tracing::warn!(
                "outbox relay on a disabled event bus (EVENT_BUS_ENABLED=false): \
                 rows are marked published and their events dropped, as publish drops them"
            );
        }
        let token = CancellationToken::new();
        let wakers: Vec<Arc<Notify>> = (0..options.workers)
            .map(|_| Arc::new(Notify::new()))
            .collect();
        let mut tasks = Vec::with_capacity(options.workers + 2);
        tasks.push(tokio::spawn(
            wake::listen(pool.clone(), wakers.clone(), token.clone())
                .instrument(tracing::info_span!("outbox_listener")),
        ));
        tasks.push(tokio::spawn(
            cleanup::run(pool.clone(), Arc::clone(&options), token.clone())
                .instrument(tracing::info_span!("outbox_cleanup")),
        ));
        for (worker, wake) in wakers.into_iter().enumerate() {
            tasks.push(tokio::spawn(
                work(
                    pool.clone(),
                    bus.clone(),
                    Arc::clone(&options),
                    wake,
                    token.clone(),
                )
                .instrument(tracing::info_span!("outbox_relay", worker)),
            ));
        }
        tracing::info!(
            workers = options.workers,
            batch = options.batch,
            "outbox relay started"
        );
        Relay { token, tasks }
    }

    /// Stops the relay after the rounds in flight (each at most a hand-off
    /// and a commit), and waits for its tasks.
    ///
    /// # Errors
    ///
    /// [`OutboxError::Task`] when one of its tasks panicked.
    pub async fn stop(mut self) -> Result<(), OutboxError> {
        self.token.cancel();
        let mut failed = None;
        for task in self.tasks.drain(..) {
            if let Err(e) = task.await {
                failed.get_or_insert(e.to_string());
            }
        }
        tracing::info!("outbox relay stopped");
        failed.map_or(Ok(()), |e| Err(OutboxError::Task(e)))
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

/// Runs a relay in this process until `shutdown` completes, then stops it:
/// migrates the schema, spawns the [`Relay`], waits, stops.
///
/// # Errors
///
/// As [`migrate`](crate::migrate) and [`Relay::stop`].
pub async fn run_until(
    pool: PgPool,
    bus: EventBus,
    options: RelayOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<(), OutboxError> {
    crate::migrate(&pool).await?;
    let relay = Relay::spawn(pool, bus, options);
    shutdown.await;
    relay.stop().await
}

/// Runs a relay in this process until ctrl-c (SIGINT): the `main` of a
/// process (or container) whose only job is relaying.
///
/// ```no_run
/// #[tokio::main]
/// async fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let pool = sqlx::PgPool::connect(&std::env::var("DATABASE_URL")?).await?;
///     let bus = events_core::EventBus::from_env().await?;
///     events_outbox::run(pool, bus, Default::default()).await?;
///     Ok(())
/// }
/// ```
///
/// # Errors
///
/// As [`run_until`], and [`OutboxError::Signal`] when ctrl-c cannot be
/// waited for (the relay is stopped first).
pub async fn run(pool: PgPool, bus: EventBus, options: RelayOptions) -> Result<(), OutboxError> {
    let mut signal = None;
    run_until(pool, bus, options, async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            signal = Some(e);
        }
    })
    .await?;
    signal.map_or(Ok(()), |e| Err(OutboxError::Signal(e)))
}

/// One worker: rounds while there is work, then waits for a notification,
/// the poll interval or the earliest retry, whichever comes first.
async fn work(
    pool: PgPool,
    bus: EventBus,
    options: Arc<RelayOptions>,
    wake: Arc<Notify>,
    stop: CancellationToken,
) {
    let mut failures = 0u32;
    loop {
        if stop.is_cancelled() {
            return;
        }
        // After a round whose every row was refused for now (the bus looks
        // down), commits do not start rounds: the next one waits for the
        // earliest retry (at most the poll interval), so an outage costs one
        // round per interval, not one per commit.
        let (wait, deaf) = match round::run(&pool, &bus, &options).await {
            Ok(round) => {
                failures = 0;
                if round.settled > 0 {
                    // Accepted or dead-lettered rows may have made new heads.
                    continue;
                }
                match round.retry_in {
                    Some(retry) => (retry.min(options.poll_interval), true),
                    None => (options.poll_interval, false),
                }
            }
            Err(error) => {
                failures = failures.saturating_add(1);
                let wait =
                    backoff::delay(failures, backoff::RECONNECT_FIRST, backoff::RECONNECT_MAX);
                if error.is_missing_tables() {
                    tracing::warn!(error = %one_line(&error), failures, retry_in = ?wait,
                        "outbox relay round failed: the outbox's tables are not in this database; \
                         run events_outbox::migrate (or `events outbox migrate`)");
                } else {
                    tracing::warn!(error = %one_line(&error), failures, retry_in = ?wait, "outbox relay round failed");
                }
                (wait, false)
            }
        };
        if deaf {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
            continue;
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = wake.notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}
