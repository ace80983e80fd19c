//! `events list`: the oldest pending events, or the newest handled.

use super::{Context, Fallible, Store};
use crate::{render, OK};

/// `events list [--max N] [--handled]`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// How many.
    #[arg(long, default_value_t = 20)]
    max: usize,
    /// The journal of events handled in process (local mode) instead.
    #[arg(long)]
    handled: bool,
}

/// Prints the events.
pub(crate) async fn run(args: Args, store: &Store, ctx: &mut Context<'_>) -> Fallible<u8> {
    let events = if args.handled {
        store.events.handled(args.max).await?
    } else {
        store.events.peek(args.max).await?
    };
    if events.is_empty() && !ctx.json {
        writeln!(
            ctx.out,
            "{}",
            if args.handled {
                "no handled events"
            } else {
                "no pending events"
            }
        )?;
    } else {
        render::events(ctx.out, &events, ctx.json)?;
    }
    Ok(OK)
}
