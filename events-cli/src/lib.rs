//! The `events` command-line tool: see and act on an event store.
//!
//! ```text
//! events [--store PATH] [--json] stats
//! events list [--max N] [--handled]  the oldest pending events (or the newest handled)
//! events show ID                     one event, attributes included
//! events dead-letters [--max N]      dead letters, unreadable rows included
//! events check [--repair]            integrity check of every page and row
//! events replay [--max N]            send stored events through the configured bus
//! events requeue ID                  a dead letter back to the queue
//! events purge --dead                delete every dead letter
//!
//! events outbox [--database-url URL] migrate|stats|list|dead-letters|requeue ID
//!                                    the PostgreSQL outbox (events-outbox) of DATABASE_URL
//! ```
//!
//! # The store
//!
//! The store is `--store`, else `EVENT_BUS_STORE_PATH`, else
//! `.events-bus/events.db`. The read commands (`stats`, `list`, `show`,
//! `dead-letters`, `check`) open the store read-only: they never create,
//! write, migrate or repair it, and work whatever `EVENT_BUS_MODE` says.
//! `replay` builds the bus from the environment (`EVENT_BUS_MODE=eventbridge`
//! and a linked publisher).
//!
//! # The outbox
//!
//! `events outbox ...` acts on the transactional outbox (`events-outbox`)
//! in the PostgreSQL database of `--database-url`, else `DATABASE_URL`:
//! `migrate` creates or upgrades its tables (idempotent), `stats` prints
//! the waiting rows, dead letters, kept published rows and the outbox lag
//! (the age of the oldest waiting row), `list` and `dead-letters` the
//! oldest rows of each (`--max N`), `requeue ID` puts a dead letter back
//! (exit code `3` when there is none with that id). The store options do
//! not apply.
//!
//! # Exit codes
//!
//! `0` done ([`OK`]); `1` an error: no store, a bad configuration, a store
//! error ([`ERROR`]); `2` a usage error ([`USAGE`]); `3` no such event
//! ([`NOT_FOUND`]); `4` replay finished with events still pending or
//! dead-lettered ([`INCOMPLETE`]); `5` `check` found damage ([`DAMAGED`]).
//!
//! # In another binary
//!
//! The `events` binary links `events-eventbridge` so `replay` goes through
//! EventBridge in eventbridge mode; another binary that links a publisher
//! can ship the same tool with [`main`], or with [`run`] and [`run_with_env`]
//! to choose its arguments, environment, publisher and output:
//!
//! ```
//! use events_core::store::{EventStore, SqliteStore};
//! use events_core::{DomainEvent, Event, RawEvent};
//!
//! #[derive(DomainEvent, Debug, Clone)]
//! #[event(company = "acme", service = "shop", version = 1, resource = "order", action = "placed")]
//! struct OrderPlaced { total: u64 }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! let path = dir.path().join("events.db");
//! let store = SqliteStore::open(&path)?;
//! store.store(vec![RawEvent::from_event(&Event::new(OrderPlaced { total: 10 }))?]).await?;
//! drop(store);
//!
//! // `events --json stats`, with the store path from a lookup instead of the
//! // process environment.
//! let env = |var: &str| (var == "EVENT_BUS_STORE_PATH").then(|| path.display().to_string());
//! let (mut out, mut err) = (Vec::new(), Vec::new());
//! let code = events_cli::run_with_env(["events", "--json", "stats"], env, None, &mut out, &mut err).await;
//! assert_eq!(code, events_cli::OK, "{}", String::from_utf8_lossy(&err));
//! let stats: serde_json::Value = serde_json::from_slice(&out)?;
//! assert_eq!(stats["pending"], 1);
//! # Ok(()) }
//! ```
//!
//! # Features
//!
//! This crate has no cargo features.

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use events_core::error::write_chain;
use events_core::publisher::Publisher;

mod args;
mod commands;
mod render;

/// Exit code: done.
pub const OK: u8 = 0;
/// Exit code: an error.
pub const ERROR: u8 = 1;
/// Exit code: a usage error.
pub const USAGE: u8 = 2;
/// Exit code: no such event.
pub const NOT_FOUND: u8 = 3;
/// Exit code: replay left events pending or dead-lettered.
pub const INCOMPLETE: u8 = 4;
/// Exit code: `check` found damage.
pub const DAMAGED: u8 = 5;

/// The binary's `main`: arguments and environment from the process, output
/// to stdout/stderr.
pub fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(ERROR);
        }
    };
    let code = runtime.block_on(run(
        std::env::args_os(),
        None,
        &mut std::io::stdout(),
        &mut std::io::stderr(),
    ));
    ExitCode::from(code)
}

/// Runs the tool with `args` (the first is the program name) and the
/// process environment. `publisher` replaces the one `EVENT_BUS_MODE` would
/// pick (tests, custom binaries). Returns the exit code; errors are written
/// to `err`.
pub async fn run<I, T>(
    args: I,
    publisher: Option<Arc<dyn Publisher>>,
    out: &mut (dyn Write + Send),
    err: &mut (dyn Write + Send),
) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    run_with_env(args, |var| std::env::var(var).ok(), publisher, out, err).await
}

/// [`run`] with the variables `EVENT_BUS_*` read through `env` instead of
/// the process environment (a test's map, a file): the store path and the
/// bus configuration of `replay`.
pub async fn run_with_env<I, T>(
    args: I,
    env: impl Fn(&str) -> Option<String> + Send + Sync,
    publisher: Option<Arc<dyn Publisher>>,
    out: &mut (dyn Write + Send),
    err: &mut (dyn Write + Send),
) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args = match args::Args::try_parse_from(args) {
        Ok(args) => args,
        Err(e) => {
            let _ = if e.use_stderr() {
                write!(err, "{e}")
            } else {
                write!(out, "{e}")
            };
            return if e.use_stderr() { USAGE } else { OK };
        }
    };
    let mut ctx = commands::Context {
        env: &env,
        publisher,
        json: args.json,
        out,
        err,
    };
    match commands::execute(args.store, args.command, &mut ctx).await {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(ctx.err, "error: {:#}", Chain(&*e));
            ERROR
        }
    }
}

/// An error and the causes it does not already say ([`write_chain`]).
struct Chain<'a>(&'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write_chain(self.0, f)
    }
}
