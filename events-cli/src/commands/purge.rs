//! `events purge --dead`: deletes every dead letter.

use serde_json::json;

use super::{Context, Fallible, Store};
use crate::OK;

/// `events purge --dead`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// Confirms that dead letters are what to delete.
    #[arg(long, required = true)]
    dead: bool,
}

/// Deletes the dead letters and says how many.
pub(crate) async fn run(_args: Args, store: &Store, ctx: &mut Context<'_>) -> Fallible<u8> {
    let purged = store.events.purge_dead().await?;
    if ctx.json {
        writeln!(ctx.out, "{}", json!({"purged": purged}))?;
    } else {
        writeln!(ctx.out, "purged {purged} dead letter(s)")?;
    }
    Ok(OK)
}
