//! The company example: `cargo run --example company`.
//!
//! `cargo run --example company -- consume` runs the other side instead:
//! the SQS consumer (`EVENT_BUS_QUEUE_URL`) with the same handlers, until
//! ctrl-c or SIGTERM (see `consume` below and the README).
//!
//! Creates a company through the use case, which saves it and publishes
//! `CompanyCreated`; the handlers (in this crate and in
//! `company-notifications`) are discovered, not listed. Runs on the embedded
//! default (local mode, SQLite store at `.events-bus/events.db`): no AWS.
//! With `EVENT_BUS_MODE=eventbridge` it publishes to AWS EventBridge (or
//! moto: see the README) through `events-eventbridge`, which it links.

use std::io::IsTerminal;
use std::sync::Arc;

// Linking the crate is what makes its handlers discoverable.
use company_notifications as _;
// Linking the EventBridge crate registers the `eventbridge` mode:
// EVENT_BUS_MODE=eventbridge needs no other code.
use events_eventbridge as _;
use events_examples::application::{CreateCompanyDto, CreateCompanyUseCase};
use events_examples::infrastructure::repository::InMemoryCompanyRepository;
use events_examples::startup::build_event_bus;
use uuid::Uuid;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();

    if std::env::args().nth(1).as_deref() == Some("consume") {
        return consume().await;
    }

    let bus = build_event_bus().await?;
    println!(
        "event bus: mode={} enabled={} async={} store={}",
        bus.config().mode,
        bus.config().enabled,
        bus.config().async_handlers,
        bus.config().store_path.display()
    );

    let use_case =
        CreateCompanyUseCase::new(Arc::new(InMemoryCompanyRepository::default()), bus.clone());
    let company = use_case
        .execute(CreateCompanyDto {
            name: "Test Company".to_owned(),
            country_id: Uuid::new_v4(),
        })
        .await?;

    println!("created company {} ({})", company.name, company.id);
    for event in &company.published {
        println!(
            "published {} id={} delivery={:?}",
            event.name(),
            event.id(),
            event.delivery()
        );
        for handler in event.handlers() {
            println!("  handler {} -> {:?}", handler.handler, handler.status);
        }
        if event.spawned() > 0 {
            println!(
                "  {} handler(s) spawned (EVENT_BUS_ASYNC=true)",
                event.spawned()
            );
        }
    }
    bus.shutdown(std::time::Duration::from_secs(10)).await?;
    if let Some(store) = bus.store() {
        let stats = store.stats().await?;
        println!(
            "store: {} pending, {} handled, {} dead letters",
            stats.pending, stats.handled, stats.dead
        );
    }
    Ok(())
}

/// `consume`: the SQS queue a rule of the bus feeds, handled by the same
/// `#[handler]`s (discovered); prints a line per message and the report.
async fn consume() -> anyhow::Result<()> {
    use events_eventbridge::{Processed, SqsConsumer};

    // Only the handlers: this side publishes nothing.
    let bus = events_core::EventBus::builder().without_store().build()?;
    let consumer = SqsConsumer::builder_from_env()?
        .on_processed(|processed| match processed {
            Processed::Handled { name, id, ran, .. } => {
                println!("handled {name} id={id} handlers={ran}")
            }
            other => println!("{other:?}"),
        })
        .build(bus)
        .await?;
    println!("consuming {} (ctrl-c to stop)", consumer.queue_url());
    let report = consumer.run_until_signal().await?;
    println!(
        "stopped: received={} handled={} duplicates={} failed={} undecodable={} unrouted={} deleted={}",
        report.received,
        report.handled,
        report.duplicates,
        report.failed,
        report.undecodable,
        report.unrouted,
        report.deleted
    );
    Ok(())
}
