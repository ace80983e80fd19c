//! `events outbox migrate`: creates or upgrades the outbox's tables.

use serde_json::json;
use sqlx::PgPool;

use super::super::{Context, Fallible};
use crate::OK;

/// `events outbox migrate` takes no arguments.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {}

/// Runs `events_outbox::migrate` (idempotent, safe beside running services).
pub(crate) async fn run(_args: Args, pool: &PgPool, ctx: &mut Context<'_>) -> Fallible<u8> {
    events_outbox::migrate(pool).await?;
    let version = events_outbox::SCHEMA_VERSION;
    if ctx.json {
        writeln!(ctx.out, "{}", json!({ "schema_version": version }))?;
    } else {
        writeln!(ctx.out, "outbox schema at version {version}")?;
    }
    Ok(OK)
}
