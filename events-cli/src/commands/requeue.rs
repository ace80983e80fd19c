//! `events requeue`: a dead letter back to the end of the queue.

use events_core::envelope::EventId;
use serde_json::json;

use super::{Context, Fallible, Store};
use crate::{NOT_FOUND, OK};

/// `events requeue ID`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// The event id.
    id: String,
}

/// Requeues the dead letter; [`NOT_FOUND`] when there is none with that id.
pub(crate) async fn run(args: Args, store: &Store, ctx: &mut Context<'_>) -> Fallible<u8> {
    let id = args.id;
    if store.events.requeue(EventId::from(id.as_str())).await? {
        if ctx.json {
            writeln!(ctx.out, "{}", json!({"requeued": id}))?;
        } else {
            writeln!(ctx.out, "requeued {id}")?;
        }
        Ok(OK)
    } else {
        writeln!(ctx.err, "no dead letter with id `{id}`")?;
        Ok(NOT_FOUND)
    }
}
