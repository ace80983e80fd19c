//! `events outbox stats`: counts and the outbox lag.

use sqlx::PgPool;

use super::super::{Context, Fallible};
use super::{explain, render};
use crate::OK;

/// `events outbox stats` takes no arguments.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {}

/// Prints the counts and the lag.
pub(crate) async fn run(_args: Args, pool: &PgPool, ctx: &mut Context<'_>) -> Fallible<u8> {
    let stats = events_outbox::stats(pool).await.map_err(explain)?;
    if ctx.json {
        writeln!(ctx.out, "{}", render::stats_json(&stats))?;
    } else {
        render::stats(ctx.out, &stats)?;
    }
    Ok(OK)
}
