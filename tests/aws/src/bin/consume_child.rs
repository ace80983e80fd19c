//! A consumer process for the crash test (`tests/consume_crash.rs`): an
//! [`SqsConsumer`] from the environment (`EVENT_BUS_QUEUE_URL`,
//! `EVENT_BUS_DEDUP=sqlite`, `EVENT_BUS_DEDUP_PATH`, the AWS variables) with
//! two handlers of `CompanyCreated`, `first` and `second`. Each handler run
//! is written to the ledger (SQLite at `CONSUME_LEDGER`): the event id, the
//! handler, and whether the deduplication table already had that pair
//! marked when it ran (which must never happen). Runs until SIGTERM and
//! prints its report as one JSON line.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use events_core::{Event, EventBus, Handler, HandlerResult};
use events_eventbridge::SqsConsumer;
use events_examples::domain::events::CompanyCreated;
use rusqlite::{params, Connection, OptionalExtension};

struct Ledger {
    name: &'static str,
    ledger: Arc<Mutex<Connection>>,
    dedup: Arc<Mutex<Connection>>,
}

impl Handler<CompanyCreated> for Ledger {
    async fn handle(&self, event: &Event<CompanyCreated>) -> HandlerResult {
        let id = event.id().as_str().to_owned();
        let marked = {
            let dedup = self.dedup.lock().map_err(|_| "dedup lock")?;
            dedup
                .query_row(
                    "SELECT 1 FROM events_bus_handled WHERE event_id = ?1 AND handler = ?2",
                    params![id, self.name],
                    |r| r.get::<_, i64>(0),
                )
                .optional()?
                .is_some()
        };
        {
            let ledger = self.ledger.lock().map_err(|_| "ledger lock")?;
            ledger.execute(
                "INSERT INTO runs (event_id, handler, was_marked) VALUES (?1, ?2, ?3)",
                params![id, self.name, marked],
            )?;
        }
        // Work takes a while, so a kill lands with messages in flight.
        tokio::time::sleep(Duration::from_millis(100)).await;
        Ok(())
    }
}

fn open(path: &str) -> Connection {
    let conn = Connection::open(path).unwrap_or_else(|e| panic!("open {path}: {e}"));
    conn.busy_timeout(Duration::from_secs(10))
        .expect("busy timeout");
    conn
}

#[tokio::main]
async fn main() {
    let ledger_path = std::env::var("CONSUME_LEDGER").expect("CONSUME_LEDGER");
    let dedup_path = std::env::var("EVENT_BUS_DEDUP_PATH").expect("EVENT_BUS_DEDUP_PATH");
    let ledger = open(&ledger_path);
    ledger
        .execute_batch(
            "PRAGMA journal_mode=WAL;
             CREATE TABLE IF NOT EXISTS runs (event_id TEXT NOT NULL, handler TEXT NOT NULL, was_marked INTEGER NOT NULL);",
        )
        .expect("ledger schema");
    let ledger = Arc::new(Mutex::new(ledger));
    // Creates the deduplication table, so the handlers can look at it.
    drop(events_eventbridge::SqliteDedup::open(&dedup_path).expect("dedup table"));
    let handler = |name: &'static str| Ledger {
        name,
        ledger: Arc::clone(&ledger),
        dedup: Arc::new(Mutex::new(open(&dedup_path))),
    };
    let bus = EventBus::builder()
        .without_store()
        .discover(false)
        .register_handler_named::<CompanyCreated, _>("first", handler("first"))
        .register_handler_named::<CompanyCreated, _>("second", handler("second"))
        .build()
        .expect("bus");
    let consumer = SqsConsumer::from_env(bus)
        .await
        .expect("consumer from the environment");
    eprintln!("consume_child: running");
    let report = consumer
        .run_until_signal()
        .await
        .expect("consumer stopped by an error");
    println!(
        "{{\"received\":{},\"handled\":{},\"duplicates\":{},\"failed\":{},\"deleted\":{}}}",
        report.received, report.handled, report.duplicates, report.failed, report.deleted
    );
}
