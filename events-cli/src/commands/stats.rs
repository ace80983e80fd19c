//! `events stats`: counts of pending events and dead letters.

use serde_json::json;

use super::{Context, Fallible, Store};
use crate::{render, OK};

/// `events stats` takes no arguments.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {}

/// Prints the counts.
pub(crate) async fn run(_args: Args, store: &Store, ctx: &mut Context<'_>) -> Fallible<u8> {
    let stats = store.events.stats().await?;
    let local_pending = store.events.local_pending().await?;
    if ctx.json {
        writeln!(
            ctx.out,
            "{}",
            json!({
                "path": store.path,
                "pending": stats.pending,
                "local_pending": local_pending,
                "claimed": stats.claimed,
                "handled": stats.handled,
                "dead": stats.dead,
                "unreadable": stats.unreadable,
            })
        )?;
    } else {
        render::stats(ctx.out, &store.path, &stats, local_pending)?;
    }
    Ok(OK)
}
