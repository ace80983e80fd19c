//! A child process that runs the company example's code path (its
//! `build_event_bus` from the environment and its `CreateCompanyUseCase`),
//! for tests that need a separate process with its own `EVENT_BUS_*` and
//! `AWS_*` variables (eventbridge mode against moto).
//!
//! - `company_publisher publish N [PAUSE_AT]`: creates N companies; prints
//!   one JSON line per published event (`id`, `company_name`, `delivery`,
//!   `remote_id`). With `PAUSE_AT`, after that
//!   many it prints `{"paused":PAUSE_AT}` and waits for a line on stdin.
//! - `company_publisher replay MAX`: `publish_from_failover(MAX)` until the
//!   store is empty or nothing more is sent; prints the counts.
//! - `company_publisher replayer`: the background replayer, until the
//!   store is empty (at most 120 s); prints the counts.

use std::io::{BufRead, Write};
use std::sync::Arc;
use std::time::Duration;

use events_core::bus::ReplayerOptions;
use events_core::{Delivery, EventBus};
use events_examples::application::{CreateCompanyDto, CreateCompanyUseCase};
use events_examples::infrastructure::repository::InMemoryCompanyRepository;
use events_examples::startup::build_event_bus;
// As the company example does: linking registers the `eventbridge` mode.
use events_eventbridge as _;

fn line(value: String) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{value}");
    let _ = out.flush();
}

fn delivery(d: &Delivery) -> (String, Option<String>) {
    match d {
        Delivery::Published { remote_id } => ("Published".to_owned(), remote_id.clone()),
        Delivery::FailedOver { error } => (format!("FailedOver: {error}"), None),
        Delivery::DeadLettered { error } => (format!("DeadLettered: {error}"), None),
        other => (format!("{other:?}"), None),
    }
}

async fn publish(bus: EventBus, n: usize, pause_at: Option<usize>) -> anyhow_free::Result {
    let use_case =
        CreateCompanyUseCase::new(Arc::new(InMemoryCompanyRepository::default()), bus.clone());
    for i in 0..n {
        if pause_at == Some(i) {
            line(format!("{{\"paused\":{i}}}"));
            let mut go = String::new();
            std::io::stdin().lock().read_line(&mut go)?;
        }
        let company = use_case
            .execute(CreateCompanyDto {
                name: format!("Company {i} — Ñandú \"{i}\""),
                country_id: uuid::Uuid::new_v4(),
            })
            .await
            .map_err(|e| format!("create company {i}: {e}"))?;
        for event in &company.published {
            let (delivery, remote_id) = delivery(event.delivery());
            line(
                serde_json::json!({
                    "id": event.id().as_str(),
                    "company_name": company.name,
                    "delivery": delivery,
                    "remote_id": remote_id,
                })
                .to_string(),
            );
        }
    }
    Ok(())
}

async fn counts(bus: &EventBus) -> anyhow_free::Result<(u64, u64)> {
    let store = bus.store().ok_or("the bus has no store")?;
    let stats = store.stats().await.map_err(|e| e.to_string())?;
    Ok((stats.pending, stats.dead))
}

async fn replay(bus: EventBus, max: usize) -> anyhow_free::Result {
    let mut sent = 0;
    loop {
        let report = bus
            .publish_from_failover(max)
            .await
            .map_err(|e| e.to_string())?;
        sent += report.sent.len();
        if report.sent.is_empty() {
            break;
        }
    }
    let (pending, dead) = counts(&bus).await?;
    line(format!(
        "{{\"sent\":{sent},\"pending\":{pending},\"dead\":{dead}}}"
    ));
    Ok(())
}

async fn replayer(bus: EventBus) -> anyhow_free::Result {
    let options = ReplayerOptions {
        interval: Duration::from_millis(100),
        max_backoff: Duration::from_millis(500),
        batch: 50,
    };
    let replayer = bus.spawn_replayer(options).map_err(|e| e.to_string())?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while counts(&bus).await?.0 > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    replayer.stop().await;
    let (pending, dead) = counts(&bus).await?;
    line(format!("{{\"pending\":{pending},\"dead\":{dead}}}"));
    Ok(())
}

/// `Result` with a message, without pulling anyhow into the tests crate.
mod anyhow_free {
    pub type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // The message and the causes it does not say, on one line.
            struct Chain<'a>(&'a dyn std::error::Error);
            impl std::fmt::Display for Chain<'_> {
                fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    events_core::error::write_chain(self.0, f)
                }
            }
            eprintln!("error: {:#}", Chain(&*e));
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow_free::Result {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |i: usize| -> anyhow_free::Result<usize> {
        let text = args.get(i).ok_or("missing a number argument")?;
        Ok(text.parse().map_err(|e| format!("`{text}`: {e}"))?)
    };
    let bus = build_event_bus().await?;
    match args.first().map(String::as_str) {
        Some("publish") => {
            let pause_at = if args.len() > 2 {
                Some(number(2)?)
            } else {
                None
            };
            publish(bus, number(1)?, pause_at).await
        }
        Some("replay") => replay(bus, number(1)?).await,
        Some("replayer") => replayer(bus).await,
        _ => Err("usage: company_publisher publish N [PAUSE_AT] | replay MAX | replayer".into()),
    }
}
