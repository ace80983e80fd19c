//! `events outbox requeue`: a dead letter back in the queue.

use serde_json::json;
use sqlx::PgPool;

use super::super::{Context, Fallible};
use super::explain;
use crate::{NOT_FOUND, OK};

/// `events outbox requeue ID`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// The event id of the dead letter.
    id: String,
}

/// Requeues it; [`NOT_FOUND`] when no dead letter has that id.
pub(crate) async fn run(args: Args, pool: &PgPool, ctx: &mut Context<'_>) -> Fallible<u8> {
    let id = args.id;
    if events_outbox::requeue(pool, &id).await.map_err(explain)? {
        if ctx.json {
            writeln!(ctx.out, "{}", json!({ "requeued": id }))?;
        } else {
            writeln!(ctx.out, "requeued {id}")?;
        }
        Ok(OK)
    } else {
        writeln!(ctx.err, "no dead letter with id `{id}` in the outbox")?;
        Ok(NOT_FOUND)
    }
}
