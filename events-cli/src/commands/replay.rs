//! `events replay`: sends stored events through the configured bus, oldest
//! first, and says how it went.

use events_core::config::{BusConfig, Mode};
use events_core::EventBus;
use serde_json::json;

use super::{Context, Fallible, Store};
use crate::{INCOMPLETE, OK};

/// `events replay [--max N] [--batch N]`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// How many at most (default: all).
    #[arg(long)]
    max: Option<usize>,
    /// Events per call to the bus.
    #[arg(long, default_value_t = 10)]
    batch: usize,
}

/// Replays; [`INCOMPLETE`] when events failed or were dead-lettered.
pub(crate) async fn run(args: Args, store: Store, ctx: &mut Context<'_>) -> Fallible<u8> {
    let batch = args.batch.max(1);
    let mut config = BusConfig::from_lookup(ctx.env)?;
    config.store_path = store.path;
    let store = store.events;
    // The environment chooses (a publisher given sets the mode, so it is
    // passed on only when the mode is already remote).
    let remote = config.mode != Mode::Local;
    let mut builder = EventBus::builder()
        .config(config)
        .store(store.clone())
        .discover(false);
    if let Some(publisher) = ctx.publisher.clone().filter(|_| remote) {
        builder = builder.publisher(publisher);
    }
    if builder.configured_mode() == Mode::Local {
        return Err(
            "replay sends stored events to the remote bus: set EVENT_BUS_MODE=eventbridge \
                    (local mode has no remote to send to)"
                .into(),
        );
    }
    let bus = builder.connect().await?;
    let total = store.stats().await?.pending as usize;
    let goal = args.max.unwrap_or(total).min(total);
    let (mut sent, mut failed, mut dead, mut tried) = (0usize, 0usize, 0usize, 0usize);
    let mut first_failure = None;
    // Failed events stay at the head of the queue: stop once a batch sends
    // nothing, rather than retrying them in a loop.
    while tried < goal {
        let report = bus.publish_from_failover(batch.min(goal - tried)).await?;
        let round = report.sent.len() + report.failed.len() + report.dead_lettered.len();
        if first_failure.is_none() {
            first_failure = report
                .failed
                .first()
                .or(report.dead_lettered.first())
                .cloned();
        }
        sent += report.sent.len();
        failed += report.failed.len();
        dead += report.dead_lettered.len();
        tried += round;
        if goal > batch {
            writeln!(
                ctx.err,
                "replayed {tried}/{goal} (sent {sent}, failed {failed}, dead-lettered {dead})"
            )?;
        }
        if round == 0 || report.sent.is_empty() {
            break;
        }
    }
    let pending = store.stats().await?.pending;
    // Why: the first failure's error, as the store recorded it.
    if let Some(id) = first_failure {
        if let Some(error) = store.get(id.clone()).await?.and_then(|e| e.last_error) {
            writeln!(ctx.err, "first failure: event {id}: {error}")?;
        }
    }
    if ctx.json {
        writeln!(
            ctx.out,
            "{}",
            json!({"sent": sent, "failed": failed, "dead_lettered": dead, "pending": pending})
        )?;
    } else {
        writeln!(
            ctx.out,
            "sent {sent}, failed {failed}, dead-lettered {dead}, pending {pending}"
        )?;
    }
    Ok(if failed > 0 || dead > 0 {
        INCOMPLETE
    } else {
        OK
    })
}
