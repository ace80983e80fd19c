//! `events dead-letters`: the oldest dead letters, unreadable rows included.

use serde_json::Value;

use super::{Context, Fallible, Store};
use crate::{render, OK};

/// `events dead-letters [--max N]`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// How many.
    #[arg(long, default_value_t = 20)]
    max: usize,
}

/// Prints the dead letters, then the unreadable rows.
pub(crate) async fn run(args: Args, store: &Store, ctx: &mut Context<'_>) -> Fallible<u8> {
    let dead = store.events.dead_letters(args.max).await?;
    let unreadable = store.events.unreadable(args.max).await?;
    if ctx.json {
        let mut list: Vec<Value> = dead.iter().map(render::summary).collect();
        list.extend(unreadable.iter().map(render::unreadable_summary));
        writeln!(ctx.out, "{}", Value::Array(list))?;
    } else if dead.is_empty() && unreadable.is_empty() {
        writeln!(ctx.out, "no dead letters")?;
    } else {
        if !dead.is_empty() {
            render::events(ctx.out, &dead, false)?;
        }
        if !unreadable.is_empty() {
            render::unreadable_rows(ctx.out, &unreadable)?;
        }
    }
    Ok(OK)
}
