//! The command line: the options every command takes, then the command
//! ([`Command`], with the commands).

use std::path::PathBuf;

use clap::Parser;

use crate::commands::Command;

/// `events [--store PATH] [--json] COMMAND`.
#[derive(Parser, Debug)]
#[command(name = "events", version, about = "See and act on an event store.")]
pub(crate) struct Args {
    /// The store (default: EVENT_BUS_STORE_PATH, else .events-bus/events.db).
    #[arg(long, global = true, value_name = "PATH")]
    pub(crate) store: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    #[command(subcommand)]
    pub(crate) command: Command,
}
