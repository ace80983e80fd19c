//! `events outbox dead-letters`: the oldest dead letters, with their errors.

use sqlx::PgPool;

use super::super::{Context, Fallible};
use super::{at_least_one, explain, render};
use crate::OK;

/// `events outbox dead-letters [--max N]`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// How many (at least 1).
    #[arg(long, default_value_t = 20, value_parser = at_least_one)]
    max: usize,
}

/// Prints the dead letters, oldest first.
pub(crate) async fn run(args: Args, pool: &PgPool, ctx: &mut Context<'_>) -> Fallible<u8> {
    let rows = events_outbox::list_dead_letters(pool, args.max)
        .await
        .map_err(explain)?;
    render::rows(ctx.out, &rows, ctx.json, "no dead letters in the outbox")?;
    Ok(OK)
}
