//! A child process for the crash tests: it works on a store until the test
//! kills it (SIGKILL) at a random moment.
//!
//! - `store_child store PATH`: 4 tasks store events one at a time; each id is
//!   printed only after its `store` returned.
//! - `store_child replay PATH SENT_LOG`: replays the store through a remote
//!   that appends (and fsyncs) each accepted id to `SENT_LOG` before
//!   answering, the way EventBridge holds an event once it said yes.

use std::io::Write;
use std::sync::{Arc, Mutex};

use events_core::publisher::{Accepted, BoxFuture, PublishError, Publisher};
use events_core::store::{EventStore, SqliteStore};
use events_core::{Event, EventBus, Mode, RawEvent};
use events_tests::RecordWritten;

struct FileRemote(Mutex<std::fs::File>);

impl Publisher for FileRemote {
    fn name(&self) -> &str {
        "file"
    }
    fn publish<'a>(
        &'a self,
        events: &'a [RawEvent],
    ) -> BoxFuture<'a, Vec<Result<Accepted, PublishError>>> {
        Box::pin(async move {
            let mut file = match self.0.lock() {
                Ok(file) => file,
                Err(p) => p.into_inner(),
            };
            let mut lines = String::new();
            for e in events {
                lines.push_str(e.id.as_str());
                lines.push('\n');
            }
            let written = file
                .write_all(lines.as_bytes())
                .and_then(|()| file.sync_all());
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

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("store") => {
            let store = Arc::new(SqliteStore::open(&args[2])?);
            let mut tasks = Vec::new();
            for task in 0..4u32 {
                let store = store.clone();
                tasks.push(tokio::spawn(async move {
                    for n in 0.. {
                        let event = RawEvent::from_event(&Event::new(RecordWritten { task, n }))?;
                        let id = event.id.clone();
                        store.store(vec![event]).await?;
                        let mut out = std::io::stdout().lock();
                        writeln!(out, "{id}")?;
                        out.flush()?;
                    }
                    Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
                }));
            }
            for task in tasks {
                task.await??;
            }
        }
        Some("replay") => {
            let sent = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&args[3])?;
            let bus = EventBus::builder()
                .mode(Mode::EventBridge)
                .store(Arc::new(SqliteStore::open(&args[2])?))
                .publisher(Arc::new(FileRemote(Mutex::new(sent))))
                .build()?;
            loop {
                let report = bus.publish_from_failover(5).await?;
                if report.sent.is_empty() && report.failed.is_empty() {
                    println!("done");
                    return Ok(());
                }
            }
        }
        _ => return Err("usage: store_child store PATH | replay PATH SENT_LOG".into()),
    }
    Ok(())
}
