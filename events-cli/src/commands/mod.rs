//! The commands: their list ([`Command`]), the context every command gets,
//! and the store the store commands open.
//!
//! A new command is a file here with its `Args` (a `clap::Args` struct) and
//! an `async fn run`, a variant of [`Command`] and an arm of [`execute`]. A
//! group of commands (`events outbox ...`) is a folder here whose `mod.rs`
//! holds its own `#[derive(clap::Subcommand)]` enum and a `run` matching it;
//! its variant of [`Command`] is `Outbox(outbox::Args)`, whose
//! `#[command(subcommand)]` field is the group's enum. A group that does not act on the event store
//! does not call [`open_store`].

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use events_core::config::DEFAULT_STORE_PATH;
use events_core::publisher::Publisher;
use events_core::store::{EventStore, OpenReport, SqliteOptions, SqliteStore};

pub(crate) mod check;
pub(crate) mod dead_letters;
pub(crate) mod list;
pub(crate) mod outbox;
pub(crate) mod purge;
pub(crate) mod replay;
pub(crate) mod requeue;
pub(crate) mod show;
pub(crate) mod stats;

/// The subcommands.
#[derive(clap::Subcommand, Debug)]
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

/// What a command returns: an exit code, or an error for the `error:` line.
pub(crate) type Fallible<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// What every command gets: the environment, the output and the options
/// shared by all commands.
pub(crate) struct Context<'a> {
    /// The variables `EVENT_BUS_*`.
    pub(crate) env: &'a (dyn Fn(&str) -> Option<String> + Send + Sync),
    /// The publisher to replay through, instead of the one the mode picks.
    pub(crate) publisher: Option<Arc<dyn Publisher>>,
    /// `--json`.
    pub(crate) json: bool,
    /// Standard output.
    pub(crate) out: &'a mut (dyn Write + Send),
    /// Standard error.
    pub(crate) err: &'a mut (dyn Write + Send),
}

/// Runs `command` (with `--store`'s value, if given).
pub(crate) async fn execute(
    store: Option<PathBuf>,
    command: Command,
    ctx: &mut Context<'_>,
) -> Fallible<u8> {
    use Access::{ReadOnly, ReadWrite, Repair};
    match command {
        Command::Stats(args) => stats::run(args, &open_store(store, ReadOnly, ctx)?, ctx).await,
        Command::List(args) => list::run(args, &open_store(store, ReadOnly, ctx)?, ctx).await,
        Command::Show(args) => show::run(args, &open_store(store, ReadOnly, ctx)?, ctx).await,
        Command::DeadLetters(args) => {
            dead_letters::run(args, &open_store(store, ReadOnly, ctx)?, ctx).await
        }
        Command::Check(args) => {
            let access = if args.repair { Repair } else { ReadOnly };
            check::run(args, &open_store(store, access, ctx)?, ctx).await
        }
        Command::Replay(args) => replay::run(args, open_store(store, ReadWrite, ctx)?, ctx).await,
        Command::Requeue(args) => {
            requeue::run(args, &open_store(store, ReadWrite, ctx)?, ctx).await
        }
        Command::Purge(args) => purge::run(args, &open_store(store, ReadWrite, ctx)?, ctx).await,
        Command::Outbox(args) => outbox::run(args, ctx).await,
    }
}

/// How a command opens the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Never creates, writes, migrates or repairs it.
    ReadOnly,
    /// Opens it as the program does.
    ReadWrite,
    /// Opens it as the program does, checking its integrity (and repairing
    /// damage) even after a clean close.
    Repair,
}

/// The store a store command acts on.
pub(crate) struct Store {
    /// Its file.
    pub(crate) path: PathBuf,
    /// The store itself, for the SQLite-only calls (`check`).
    pub(crate) sqlite: Arc<SqliteStore>,
    /// The same store, as the bus takes it.
    pub(crate) events: Arc<dyn EventStore>,
    /// What opening it found.
    pub(crate) report: OpenReport,
}

/// The store's path: `--store`, else `EVENT_BUS_STORE_PATH`, else the
/// default; the rest of the configuration is not read (the read commands
/// work whatever `EVENT_BUS_MODE` says).
fn store_path(store: Option<PathBuf>, ctx: &Context<'_>) -> PathBuf {
    if let Some(path) = store {
        return path;
    }
    match (ctx.env)("EVENT_BUS_STORE_PATH") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => PathBuf::from(DEFAULT_STORE_PATH),
    }
}

/// Opens the store (which must exist) and warns on `err` of acknowledged
/// events gone from it.
pub(crate) fn open_store(
    store: Option<PathBuf>,
    access: Access,
    ctx: &mut Context<'_>,
) -> Fallible<Store> {
    let path = store_path(store, ctx);
    if !path.exists() {
        return Err(format!(
            "no event store at `{}` (set --store or EVENT_BUS_STORE_PATH)",
            path.display()
        )
        .into());
    }
    let sqlite = match access {
        Access::ReadOnly => SqliteStore::open_read_only(&path)?,
        Access::Repair => SqliteStore::open_with(
            &path,
            SqliteOptions {
                check_integrity: true,
                ..SqliteOptions::from_env()?
            },
        )?,
        Access::ReadWrite => SqliteStore::open_with(&path, SqliteOptions::from_env()?)?,
    };
    let report = sqlite.open_report().clone();
    if report.acknowledged_missing > 0 {
        writeln!(
            ctx.err,
            "warning: {} event(s) the store had acknowledged are gone from it (sequence numbers {:?}); \
             was its write-ahead log deleted or damaged?",
            report.acknowledged_missing, report.missing_seqs
        )?;
    }
    let sqlite = Arc::new(sqlite);
    Ok(Store {
        path,
        events: sqlite.clone(),
        sqlite,
        report,
    })
}
