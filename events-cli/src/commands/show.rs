//! `events show`: one event, attributes included.

use events_core::envelope::EventId;

use super::{Context, Fallible, Store};
use crate::{render, NOT_FOUND, OK};

/// `events show ID`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// The event id.
    id: String,
}

/// Prints the event; [`NOT_FOUND`] when there is none with that id.
pub(crate) async fn run(args: Args, store: &Store, ctx: &mut Context<'_>) -> Fallible<u8> {
    match store.events.get(EventId::from(args.id.as_str())).await? {
        Some(event) => {
            render::event(ctx.out, &event, ctx.json)?;
            Ok(OK)
        }
        None => {
            writeln!(ctx.err, "no event with id `{}` in the store", args.id)?;
            Ok(NOT_FOUND)
        }
    }
}
