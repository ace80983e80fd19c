//! The command line: global options and the subcommands, parsed by clap.
//!
//! A command is a variant of [`Command`] holding its own arguments (a
//! `clap::Args` struct in its file under `commands/`); a group of commands
//! (`events outbox ...`) is a variant holding a `clap::Subcommand` enum of
//! its own.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::commands::{check, dead_letters, list, outbox, purge, replay, requeue, show, stats};

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

/// The subcommands.
#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Counts of pending events and dead letters.
    Stats(stats::Args),
    /// The oldest pending events (or, with --handled, the newest handled).
    List(list::Args),
    /// One event, with its attributes.
    Show(show::Args),
    /// The oldest dead letters, unreadable rows included.
    DeadLetters(dead_letters::Args),
    /// Checks every page and every row (read-only unless --repair).
    Check(check::Args),
    /// Sends stored events through the configured bus, oldest first.
    Replay(replay::Args),
    /// Moves a dead letter back to the end of the queue.
    Requeue(requeue::Args),
    /// Deletes every dead letter.
    Purge(purge::Args),
    /// The PostgreSQL outbox of DATABASE_URL: migrate, stats, list, dead-letters, requeue.
    Outbox(outbox::Args),
}
