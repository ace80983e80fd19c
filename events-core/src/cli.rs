//! The `events` command-line tool: see and act on a store.
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
//! ```
//!
//! The store is `--store`, else `EVENT_BUS_STORE_PATH`, else
//! `.events-bus/events.db`. The read commands (`stats`, `list`, `show`,
//! `dead-letters`, `check`) open the store read-only: they never create,
//! write, migrate or repair it, and work whatever `EVENT_BUS_MODE` says.
//! `replay` builds the bus from the environment (`EVENT_BUS_MODE=eventbridge`
//! and a linked publisher).
//!
//! Exit codes: `0` done; `1` an error (no store, a bad configuration, a store
//! error); `2` a usage error; `3` no such event; `4` replay finished with
//! events still pending or dead-lettered; `5` `check` found damage.
//!
//! The `events` binary is the `events-cli` crate, which links
//! `events-eventbridge` so `replay` goes through EventBridge in eventbridge
//! mode; another binary that links a publisher can ship the same tool with
//! [`run`].

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use serde_json::{json, Value};

use crate::bus::EventBus;
use crate::config::{BusConfig, Mode, DEFAULT_STORE_PATH};
use crate::envelope::EventId;
use crate::publisher::Publisher;
use crate::store::{EventStore, SqliteOptions, SqliteStore, StoredEvent, UnreadableRow};
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
/// Exit code: `check` found damage.
pub const DAMAGED: u8 = 5;

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
    /// The oldest pending events (or, with --handled, the newest handled).
    List {
        /// How many.
        #[arg(long, default_value_t = 20)]
        max: usize,
        /// The journal of events handled in process (local mode) instead.
        #[arg(long)]
        handled: bool,
    },
    /// One event, with its attributes.
    Show {
        /// The event id.
        id: String,
    },
    /// The oldest dead letters, unreadable rows included.
    DeadLetters {
        /// How many.
        #[arg(long, default_value_t = 20)]
        max: usize,
    },
    /// Checks every page and every row (read-only unless --repair).
    Check {
        /// Repair damage: salvage readable rows into a new file, keep the
        /// damaged one beside it. Needs the store to be open nowhere else.
        #[arg(long)]
        repair: bool,
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
            // The message, then each cause it does not already say.
            let mut text = e.to_string();
            let mut source = std::error::Error::source(&*e);
            while let Some(cause) = source {
                let cause_text = cause.to_string();
                if !text.contains(&cause_text) {
                    text = format!("{text}: {cause_text}");
                }
                source = cause.source();
            }
            let _ = writeln!(err, "error: {text}");
            ERROR
        }
    }
}

type Fallible<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// The store's path: `--store`, else `EVENT_BUS_STORE_PATH`, else the
/// default; the rest of the configuration is not read (the read commands
/// work whatever `EVENT_BUS_MODE` says).
fn store_path(args: &Args) -> PathBuf {
    if let Some(path) = &args.store {
        return path.clone();
    }
    match std::env::var_os("EVENT_BUS_STORE_PATH") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => PathBuf::from(DEFAULT_STORE_PATH),
    }
}

async fn execute(
    args: Args,
    publisher: Option<Arc<dyn Publisher>>,
    out: &mut (dyn Write + Send),
    err: &mut (dyn Write + Send),
) -> Fallible<u8> {
    let path = store_path(&args);
    if !path.exists() {
        return Err(format!(
            "no event store at `{}` (set --store or EVENT_BUS_STORE_PATH)",
            path.display()
        )
        .into());
    }
    let json = args.json;
    let read_only = matches!(
        args.command,
        Command::Stats
            | Command::List { .. }
            | Command::Show { .. }
            | Command::DeadLetters { .. }
            | Command::Check { repair: false }
    );
    let sqlite = if read_only {
        SqliteStore::open_read_only(&path)?
    } else if let Command::Check { repair: true } = args.command {
        SqliteStore::open_with(
            &path,
            SqliteOptions {
                check_integrity: true,
                ..SqliteOptions::from_env()?
            },
        )?
    } else {
        SqliteStore::open_with(&path, SqliteOptions::from_env()?)?
    };
    let report = sqlite.open_report().clone();
    if report.acknowledged_missing > 0 {
        writeln!(
            err,
            "warning: {} event(s) the store had acknowledged are gone from it (sequence numbers {:?}); \
             was its write-ahead log deleted or damaged?",
            report.acknowledged_missing, report.missing_seqs
        )?;
    }
    let sqlite = Arc::new(sqlite);
    let store: Arc<dyn EventStore> = sqlite.clone();
    match args.command {
        Command::Stats => {
            let stats = store.stats().await?;
            if json {
                writeln!(
                    out,
                    "{}",
                    json!({
                        "path": path,
                        "pending": stats.pending,
                        "claimed": stats.claimed,
                        "handled": stats.handled,
                        "dead": stats.dead,
                        "unreadable": stats.unreadable,
                    })
                )?;
            } else {
                let rows = [
                    ("store", path.display().to_string(), String::new()),
                    (
                        "pending",
                        stats.pending.to_string(),
                        format!(
                            "waiting for a remote bus{}",
                            if stats.claimed > 0 {
                                format!("; {} being sent by a replayer", stats.claimed)
                            } else {
                                String::new()
                            }
                        ),
                    ),
                    (
                        "handled",
                        stats.handled.to_string(),
                        "handled in process (local mode), kept as a journal within the retention"
                            .to_owned(),
                    ),
                    ("dead letters", stats.dead.to_string(), String::new()),
                    (
                        "unreadable",
                        stats.unreadable.to_string(),
                        if stats.unreadable > 0 {
                            "damaged rows moved out of the queue; see `events dead-letters`"
                                .to_owned()
                        } else {
                            String::new()
                        },
                    ),
                ];
                let width = rows.iter().map(|r| r.1.len()).max().unwrap_or(0);
                for (label, value, note) in rows {
                    let label = format!("{label}:");
                    if note.is_empty() {
                        writeln!(out, "{label:<14}{value}")?;
                    } else {
                        writeln!(out, "{label:<14}{value:<width$}  ({note})")?;
                    }
                }
            }
            Ok(OK)
        }
        Command::List { max, handled } => {
            let events = if handled {
                store.handled(max).await?
            } else {
                store.peek(max).await?
            };
            if events.is_empty() && !json {
                writeln!(
                    out,
                    "{}",
                    if handled {
                        "no handled events"
                    } else {
                        "no pending events"
                    }
                )?;
            } else {
                print_events(out, &events, json)?;
            }
            Ok(OK)
        }
        Command::DeadLetters { max } => {
            let dead = store.dead_letters(max).await?;
            let unreadable = store.unreadable(max).await?;
            if json {
                let mut list: Vec<Value> = dead.iter().map(summary).collect();
                list.extend(unreadable.iter().map(unreadable_summary));
                writeln!(out, "{}", Value::Array(list))?;
            } else if dead.is_empty() && unreadable.is_empty() {
                writeln!(out, "no dead letters")?;
            } else {
                if !dead.is_empty() {
                    print_events(out, &dead, false)?;
                }
                if !unreadable.is_empty() {
                    writeln!(out, "unreadable rows (kept with their raw bytes):")?;
                    for row in &unreadable {
                        writeln!(
                            out,
                            "{:>6}  {}  {}  found {}",
                            row.seq,
                            row.id,
                            row.reason,
                            format_time(row.found_at)
                        )?;
                    }
                }
            }
            Ok(OK)
        }
        Command::Check { repair } => {
            if repair {
                if report.is_clean() {
                    writeln!(out, "open: clean (integrity checked)")?;
                } else {
                    writeln!(out, "open: {report:?}")?;
                }
            }
            let check = sqlite.check().await?;
            if json {
                writeln!(
                    out,
                    "{}",
                    json!({
                        "rows": check.rows,
                        "integrity": check.integrity,
                        "unreadable": check.unreadable.iter().map(|(seq, reason)| json!({"seq": seq, "reason": reason})).collect::<Vec<_>>(),
                        "repaired": report.damaged_file,
                    })
                )?;
            } else {
                writeln!(out, "rows: {}", check.rows)?;
                if check.integrity.is_empty() {
                    writeln!(out, "integrity: ok")?;
                }
                for message in &check.integrity {
                    writeln!(out, "integrity: {message}")?;
                }
                for (seq, reason) in &check.unreadable {
                    writeln!(out, "unreadable row {seq}: {reason}")?;
                }
            }
            Ok(if check.is_clean() { OK } else { DAMAGED })
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
                                "{:<17}{}",
                                format!("{key}:"),
                                v.as_str().map_or_else(|| v.to_string(), str::to_owned)
                            )?;
                        }
                    }
                    writeln!(
                        out,
                        "attributes:      {}",
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
            let mut config = BusConfig::from_env()?;
            config.store_path = path;
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
    // The environment chooses (a publisher given sets the mode, so it is
    // passed on only when the mode is already remote).
    let remote = config.mode != Mode::Local;
    let mut builder = EventBus::builder()
        .config(config)
        .store(store.clone())
        .discover(false);
    if let Some(publisher) = publisher.filter(|_| remote) {
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
    let mut first_failure = None;
    // Failed events stay at the head of the queue: stop once a batch sends
    // nothing, rather than retrying them in a loop.
    while tried < goal {
        let report = bus.publish_from_failover(batch.min(goal - tried)).await?;
        let round = report.sent.len() + report.failed.len() + report.dead_lettered.len();
        if first_failure.is_none() {
            first_failure = report
                .failed
                .first()
                .or(report.dead_lettered.first())
                .cloned();
        }
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
    // Why: the first failure's error, as the store recorded it.
    if let Some(id) = first_failure {
        if let Some(error) = store.get(id.clone()).await?.and_then(|e| e.last_error) {
            writeln!(err, "first failure: event {id}: {error}")?;
        }
    }
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
        "state": event.state.as_str(),
        "attempts": event.attempts,
        "last_error": event.last_error,
        "last_attempt_at": event.last_attempt_at.map(format_time),
    })
}

fn unreadable_summary(row: &UnreadableRow) -> Value {
    let columns: serde_json::Map<String, Value> = row
        .columns
        .iter()
        .map(|(name, bytes)| {
            let value = match bytes {
                None => Value::Null,
                Some(bytes) => match std::str::from_utf8(bytes) {
                    Ok(text) => Value::String(text.to_owned()),
                    Err(_) => Value::Array(bytes.iter().map(|b| json!(b)).collect()),
                },
            };
            (name.clone(), value)
        })
        .collect();
    json!({
        "seq": row.seq,
        "id": row.id,
        "state": "unreadable",
        "reason": row.reason,
        "found_at": format_time(row.found_at),
        "raw": columns,
    })
}

/// One line per event, in aligned columns under a header.
fn print_events(
    out: &mut (dyn Write + Send),
    events: &[StoredEvent],
    json: bool,
) -> std::io::Result<()> {
    if json {
        let list: Vec<Value> = events.iter().map(summary).collect();
        return writeln!(out, "{}", Value::Array(list));
    }
    let rows: Vec<[String; 7]> = events
        .iter()
        .map(|e| {
            [
                e.seq.to_string(),
                e.event.id.to_string(),
                e.event.name.clone(),
                format_time(e.event.occurred_on),
                e.attempts.to_string(),
                e.last_attempt_at
                    .map_or_else(|| "-".to_owned(), format_time),
                e.last_error.clone().unwrap_or_else(|| "-".to_owned()),
            ]
        })
        .collect();
    let header = [
        "SEQ",
        "ID",
        "NAME",
        "OCCURRED ON",
        "ATTEMPTS",
        "LAST ATTEMPT",
        "LAST ERROR",
    ];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 7]| {
        let mut text = String::new();
        for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
            if i == 6 {
                text.push_str(cell);
            } else if i == 0 || i == 4 {
                text.push_str(&format!("{cell:>width$}  "));
            } else {
                text.push_str(&format!("{cell:<width$}  "));
            }
        }
        text.trim_end().to_owned()
    };
    writeln!(out, "{}", line(header))?;
    for row in &rows {
        writeln!(out, "{}", line(row.each_ref().map(String::as_str)))?;
    }
    Ok(())
}
