//! A child process for the crash and concurrency tests: it works on a store
//! until the test kills it (SIGKILL) at a random moment, or until done.
//!
//! - `store_child store PATH`: 4 tasks store events one at a time; each id is
//!   printed only after its `store` returned.
//! - `store_child replay PATH SENT_LOG [LEASE_MS]`: replays the store through
//!   the bus to a remote that appends (and fsyncs) `PID ID` for each
//!   accepted event to `SENT_LOG` before answering, the way EventBridge holds
//!   an event once it said yes; prints `sent N` after each batch and `done`.
//! - `store_child claim PATH SENT_LOG LEASE_MS`: the same with the store's
//!   claims used directly (claim, send, ack).
//! - `store_child hold PATH`: opens the store, prints `ready`, and keeps it
//!   open until its standard input closes.
//! - `store_child open PATH`: opens the store with the integrity check (and
//!   the repair it may need), prints `opened RECOVERED LOST`, and exits.

use std::io::{BufRead, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use events_core::publisher::{Accepted, BoxFuture, PublishError, Publisher};
use events_core::store::{EventStore, SqliteOptions, SqliteStore};
use events_core::{Event, EventBus, Mode, RawEvent};
use events_tests::RecordWritten;

type Fallible<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

struct FileRemote(Mutex<std::fs::File>);

impl FileRemote {
    fn open(path: &str) -> Fallible<FileRemote> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(FileRemote(Mutex::new(file)))
    }

    fn send(&self, events: &[RawEvent]) -> std::io::Result<()> {
        let mut file = match self.0.lock() {
            Ok(file) => file,
            Err(p) => p.into_inner(),
        };
        let pid = std::process::id();
        let mut lines = String::new();
        for e in events {
            lines.push_str(&format!("{pid} {}\n", e.id));
        }
        // One write of whole lines to a file opened for appending: lines of
        // concurrent senders never interleave.
        file.write_all(lines.as_bytes())?;
        file.sync_all()
    }
}

impl Publisher for FileRemote {
    fn name(&self) -> &str {
        "file"
    }
    fn publish<'a>(
        &'a self,
        events: &'a [RawEvent],
    ) -> BoxFuture<'a, Vec<Result<Accepted, PublishError>>> {
        Box::pin(async move {
            let written = self.send(events);
            events
                .iter()
                .map(|_| {
                    written
                        .as_ref()
                        .map(|_| Accepted::default())
                        .map_err(|e| PublishError::retryable("IoError", e.to_string()))
                })
                .collect()
        })
    }
}

fn say(line: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()
}

fn lease(args: &[String], at: usize) -> Fallible<SqliteOptions> {
    let mut options = SqliteOptions::default();
    if let Some(ms) = args.get(at) {
        options.claim_lease = Duration::from_millis(ms.parse()?);
    }
    Ok(options)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Fallible<()> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize| args.get(i).map(String::as_str).ok_or("missing argument");
    match args.get(1).map(String::as_str) {
        Some("store") => {
            let store = Arc::new(SqliteStore::open(arg(2)?)?);
            let mut tasks = Vec::new();
            for task in 0..4u32 {
                let store = store.clone();
                tasks.push(tokio::spawn(async move {
                    for n in 0.. {
                        let event = RawEvent::from_event(&Event::new(RecordWritten { task, n }))?;
                        let id = event.id.clone();
                        store.store(vec![event]).await?;
                        say(id.as_str())?;
                    }
                    Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
                }));
            }
            for task in tasks {
                task.await??;
            }
        }
        Some("replay") => {
            let remote = Arc::new(FileRemote::open(arg(3)?)?);
            let store = SqliteStore::open_with(arg(2)?, lease(&args, 4)?)?;
            let bus = EventBus::builder()
                .mode(Mode::EventBridge)
                .store(Arc::new(store))
                .publisher(remote)
                .discover(false)
                .build()?;
            let store = bus.store().ok_or("no store")?.clone();
            loop {
                let report = bus.publish_from_failover(5).await?;
                if report.sent.is_empty() && report.failed.is_empty() {
                    if store.stats().await?.pending == 0 {
                        say("done")?;
                        return Ok(());
                    }
                    // Another replayer (or a dead one's claims) holds the
                    // rest: wait for them.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
                say(&format!("sent {}", report.sent.len()))?;
            }
        }
        Some("claim") => {
            let remote = FileRemote::open(arg(3)?)?;
            let store = SqliteStore::open_with(arg(2)?, lease(&args, 4)?)?;
            loop {
                let claimed = store.claim(5).await?;
                if claimed.is_empty() {
                    if store.stats().await?.pending == 0 {
                        say("done")?;
                        return Ok(());
                    }
                    // Others hold the rest: wait for them (or their leases).
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
                let events: Vec<RawEvent> = claimed.into_iter().map(|s| s.event).collect();
                remote.send(&events)?;
                store
                    .ack(events.iter().map(|e| e.id.clone()).collect())
                    .await?;
                say(&format!("sent {}", events.len()))?;
            }
        }
        Some("hold") => {
            let store = SqliteStore::open(arg(2)?)?;
            say("ready")?;
            let mut line = String::new();
            while std::io::stdin().lock().read_line(&mut line)? > 0 {
                line.clear();
            }
            drop(store);
        }
        Some("open") => {
            let store = SqliteStore::open_with(
                arg(2)?,
                SqliteOptions {
                    check_integrity: true,
                    ..SqliteOptions::default()
                },
            )?;
            let report = store.open_report();
            say(&format!(
                "opened {} {}",
                report.rows_recovered, report.rows_lost
            ))?;
        }
        _ => {
            return Err(
                "usage: store_child store PATH | replay PATH SENT_LOG [LEASE_MS] | claim PATH SENT_LOG LEASE_MS | hold PATH | open PATH"
                    .into(),
            )
        }
    }
    Ok(())
}
