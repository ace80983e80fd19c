//! The relay in a process of its own, for the crash test: `relay_child DATABASE_URL RECORD_FILE`.
//!
//! Relays the outbox of `DATABASE_URL` to a local-mode bus whose one handler
//! appends each event's id to `RECORD_FILE` ([`AppendIds`]), until SIGINT
//! (or, in the test, SIGKILL at a random point). Small batches (10 rows) and
//! a 100 ms polling fallback.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use events_core::EventBus;
use events_outbox::RelayOptions;
use events_outbox_tests::{connect, AppendIds, Numbered};

#[tokio::main]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(record)) = (args.next(), args.next()) else {
        eprintln!("usage: relay_child DATABASE_URL RECORD_FILE");
        return ExitCode::from(2);
    };
    match run(&url, PathBuf::from(record)).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("relay_child: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(url: &str, record: PathBuf) -> Result<(), Box<dyn std::error::Error>> {
    let pool = connect(url, 4).await?;
    let bus = EventBus::builder()
        .without_store()
        .discover(false)
        .register_handler::<Numbered, _>(AppendIds::open(&record)?)
        .build()?;
    let options = RelayOptions {
        batch: 10,
        poll_interval: Duration::from_millis(100),
        ..RelayOptions::default()
    };
    events_outbox::run(pool, bus, options).await?;
    Ok(())
}
