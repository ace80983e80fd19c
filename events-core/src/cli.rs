//! The `events` command-line tool: see and act on a store.
//!
//! ```text
//! events [--store PATH] [--json] stats
//! events list [--max N]            the oldest pending events
//! events show ID                   one event, attributes included
//! events dead-letters [--max N]
//! events replay [--max N]          send stored events through the configured bus
//! events requeue ID                a dead letter back to the queue
//! events purge --dead              delete every dead letter
//! ```
//!
//! The store is `--store`, else `EVENT_BUS_STORE_PATH`, else
//! `.events-bus/events.db`. `replay` builds the bus from the environment
//! (`EVENT_BUS_MODE=eventbridge` and a linked publisher).
//!
//! Exit codes: `0` done; `1` an error (no store, a bad configuration, a store
//! error); `2` a usage error; `3` no such event; `4` replay finished with
//! events still pending or dead-lettered.
//!
//! A binary that links a publisher (such as `events-eventbridge`) can ship
//! the same tool with [`run`].

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use serde_json::{json, Value};

use crate::bus::EventBus;
use crate::config::BusConfig;
use crate::envelope::EventId;
use crate::publisher::Publisher;
use crate::store::{EventStore, SqliteStore, StoredEvent};
use crate::wire::format_time;

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

#[derive(Parser, Debug)]
#[command(name = "events", version, about = "See and act on an event store.")]
struct Args {
    /// The store (default: EVENT_BUS_STORE_PATH, else .events-bus/events.db).
    #[arg(long, global = true, value_name = "PATH")]
    store: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Counts of pending events and dead letters.
    Stats,
    /// The oldest pending events.
    List {
        /// How many.
        #[arg(long, default_value_t = 20)]
        max: usize,
    },
    /// One event, with its attributes.
    Show {
        /// The event id.
        id: String,
    },
    /// The oldest dead letters.
    DeadLetters {
        /// How many.
        #[arg(long, default_value_t = 20)]
        max: usize,
    },
    /// Sends stored events through the configured bus, oldest first.
    Replay {
        /// How many at most (default: all).
        #[arg(long)]
        max: Option<usize>,
        /// Events per call to the bus.
        #[arg(long, default_value_t = 10)]
        batch: usize,
    },
    /// Moves a dead letter back to the end of the queue.
    Requeue {
        /// The event id.
        id: String,
    },
    /// Deletes every dead letter.
    Purge {
        /// Confirms that dead letters are what to delete.
        #[arg(long, required = true)]
        dead: bool,
    },
}

/// The binary's `main`: arguments from the process, output to stdout/stderr.
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

/// Runs the tool with `args` (the first is the program name). `publisher`
/// replaces the one `EVENT_BUS_MODE` would pick (tests, custom binaries).
/// Returns the exit code.
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
    let args = match Args::try_parse_from(args) {
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
    match execute(args, publisher, out, err).await {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            ERROR
        }
    }
}

type Fallible<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

async fn execute(
    args: Args,
    publisher: Option<Arc<dyn Publisher>>,
    out: &mut (dyn Write + Send),
    err: &mut (dyn Write + Send),
) -> Fallible<u8> {
    let mut config = BusConfig::from_env()?;
    if let Some(path) = &args.store {
        config.store_path = path.clone();
    }
    let path = config.store_path.clone();
    if !path.exists() {
        return Err(format!(
            "no event store at `{}` (set --store or EVENT_BUS_STORE_PATH)",
            path.display()
        )
        .into());
    }
    let store: Arc<dyn EventStore> = Arc::new(SqliteStore::open(&path)?);
    let json = args.json;
    match args.command {
        Command::Stats => {
            let stats = store.stats().await?;
            if json {
                writeln!(
                    out,
                    "{}",
                    json!({"path": path, "pending": stats.pending, "dead": stats.dead})
                )?;
            } else {
                writeln!(out, "store: {}", path.display())?;
                writeln!(out, "pending: {}", stats.pending)?;
                writeln!(out, "dead letters: {}", stats.dead)?;
            }
            Ok(OK)
        }
        Command::List { max } => {
            print_events(out, &store.peek(max).await?, json)?;
            Ok(OK)
        }
        Command::DeadLetters { max } => {
            print_events(out, &store.dead_letters(max).await?, json)?;
            Ok(OK)
        }
        Command::Show { id } => match store.get(EventId::from(id.as_str())).await? {
            Some(event) => {
                let mut value = summary(&event);
                value["attributes"] = serde_json::from_str(&event.event.attributes)
                    .unwrap_or(Value::String(event.event.attributes.clone()));
                if json {
                    writeln!(out, "{value}")?;
                } else {
                    for key in [
                        "id",
                        "name",
                        "occurred_on",
                        "stored_at",
                        "seq",
                        "state",
                        "attempts",
                        "last_error",
                        "last_attempt_at",
                    ] {
                        if let Some(v) = value.get(key).filter(|v| !v.is_null()) {
                            writeln!(
                                out,
                                "{key}: {}",
                                v.as_str().map_or_else(|| v.to_string(), str::to_owned)
                            )?;
                        }
                    }
                    writeln!(
                        out,
                        "attributes: {}",
                        serde_json::to_string_pretty(&value["attributes"])?
                    )?;
                }
                Ok(OK)
            }
            None => {
                writeln!(err, "no event with id `{id}` in the store")?;
                Ok(NOT_FOUND)
            }
        },
        Command::Requeue { id } => {
            if store.requeue(EventId::from(id.as_str())).await? {
                if json {
                    writeln!(out, "{}", json!({"requeued": id}))?;
                } else {
                    writeln!(out, "requeued {id}")?;
                }
                Ok(OK)
            } else {
                writeln!(err, "no dead letter with id `{id}`")?;
                Ok(NOT_FOUND)
            }
        }
        Command::Purge { dead: _ } => {
            let purged = store.purge_dead().await?;
            if json {
                writeln!(out, "{}", json!({"purged": purged}))?;
            } else {
                writeln!(out, "purged {purged} dead letter(s)")?;
            }
            Ok(OK)
        }
        Command::Replay { max, batch } => {
            replay(config, store, publisher, max, batch.max(1), json, out, err).await
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn replay(
    config: BusConfig,
    store: Arc<dyn EventStore>,
    publisher: Option<Arc<dyn Publisher>>,
    max: Option<usize>,
    batch: usize,
    json: bool,
    out: &mut (dyn Write + Send),
    err: &mut (dyn Write + Send),
) -> Fallible<u8> {
    let mut builder = EventBus::builder()
        .config(config)
        .store(store.clone())
        .discover(false);
    if let Some(publisher) = publisher {
        builder = builder.publisher(publisher);
    }
    if builder_mode_is_local(&builder) {
        return Err(
            "replay sends stored events to the remote bus: set EVENT_BUS_MODE=eventbridge \
                    (local mode has no remote to send to)"
                .into(),
        );
    }
    let bus = builder.connect().await?;
    let total = store.stats().await?.pending as usize;
    let goal = max.unwrap_or(total).min(total);
    let (mut sent, mut failed, mut dead, mut tried) = (0usize, 0usize, 0usize, 0usize);
    // Failed events stay at the head of the queue: stop once a batch sends
    // nothing, rather than retrying them in a loop.
    while tried < goal {
        let report = bus.publish_from_failover(batch.min(goal - tried)).await?;
        let round = report.sent.len() + report.failed.len() + report.dead_lettered.len();
        sent += report.sent.len();
        failed += report.failed.len();
        dead += report.dead_lettered.len();
        tried += round;
        if goal > batch {
            writeln!(
                err,
                "replayed {tried}/{goal} (sent {sent}, failed {failed}, dead-lettered {dead})"
            )?;
        }
        if round == 0 || report.sent.is_empty() {
            break;
        }
    }
    let pending = store.stats().await?.pending;
    if json {
        writeln!(
            out,
            "{}",
            json!({"sent": sent, "failed": failed, "dead_lettered": dead, "pending": pending})
        )?;
    } else {
        writeln!(
            out,
            "sent {sent}, failed {failed}, dead-lettered {dead}, pending {pending}"
        )?;
    }
    Ok(if failed > 0 || dead > 0 {
        INCOMPLETE
    } else {
        OK
    })
}

fn builder_mode_is_local(builder: &crate::bus::EventBusBuilder) -> bool {
    builder.configured_mode() == crate::config::Mode::Local
}

fn summary(event: &StoredEvent) -> Value {
    json!({
        "seq": event.seq,
        "id": event.event.id.as_str(),
        "name": event.event.name,
        "occurred_on": format_time(event.event.occurred_on),
        "stored_at": format_time(event.stored_at),
        "state": if event.dead { "dead" } else { "pending" },
        "attempts": event.attempts,
        "last_error": event.last_error,
        "last_attempt_at": event.last_attempt_at.map(format_time),
    })
}

fn print_events(
    out: &mut (dyn Write + Send),
    events: &[StoredEvent],
    json: bool,
) -> std::io::Result<()> {
    if json {
        let list: Vec<Value> = events.iter().map(summary).collect();
        return writeln!(out, "{}", Value::Array(list));
    }
    for e in events {
        write!(
            out,
            "{:>6}  {}  {}  {}  attempts={}",
            e.seq,
            e.event.id,
            e.event.name,
            format_time(e.event.occurred_on),
            e.attempts
        )?;
        match &e.last_error {
            Some(error) => writeln!(out, "  last_error={error}")?,
            None => writeln!(out)?,
        }
    }
    Ok(())
}
