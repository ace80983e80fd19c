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
//!
//! With `DATABASE_URL` set (e.g. `eval "$(./scripts/postgres start)"`), the
//! company lives in PostgreSQL: the use case saves it and records its event
//! in one transaction (the outbox, `events-outbox`), and an outbox relay
//! publishes the event after the commit.
//!
//! With `--features otel` the spans of the run (the request, `publish`,
//! `dispatch`, `handle`; `process` on the `consume` side) are exported to
//! stdout at exit, or to the OTLP collector at `OTEL_EXPORTER_OTLP_ENDPOINT`
//! (`events_examples::telemetry`).

#[cfg(not(feature = "otel"))]
use std::io::IsTerminal;
use std::time::Duration;

// Linking the crate is what makes its handlers discoverable.
use company_notifications as _;
// Linking the EventBridge crate registers the `eventbridge` mode:
// EVENT_BUS_MODE=eventbridge needs no other code.
use events_eventbridge as _;
use events_examples::application::CreateCompanyDto;
use events_examples::startup::{build_event_bus, company_service};
use tracing::Instrument;
use uuid::Uuid;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    #[cfg(not(feature = "otel"))]
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    // `--features otel`: the same log lines, and the spans exported to
    // stdout (or OTEL_EXPORTER_OTLP_ENDPOINT's collector) once done.
    #[cfg(feature = "otel")]
    let telemetry = {
        use events_examples::telemetry::{ExportTo, Telemetry};
        let telemetry = Telemetry::from_env()?;
        telemetry.init()?;
        match telemetry.export_to() {
            ExportTo::Stdout => println!("traces: to stdout at exit"),
            ExportTo::Otlp(url) => println!("traces: OTLP to {url}"),
        }
        telemetry
    };

    let result = if std::env::args().nth(1).as_deref() == Some("consume") {
        consume().await
    } else {
        create_company().await
    };

    #[cfg(feature = "otel")]
    {
        let exported = tokio::task::spawn_blocking(move || telemetry.shutdown()).await?;
        if let Err(e) = exported {
            if result.is_ok() {
                return Err(e.into());
            }
            eprintln!("{e}");
        }
    }
    result
}

/// The main job: creates a company through the use case (inside a
/// `request` span with the `otel` feature) and prints what happened.
async fn create_company() -> anyhow::Result<()> {
    let bus = build_event_bus().await?;
    println!(
        "event bus: mode={} enabled={} async={} store={}",
        bus.config().mode,
        bus.config().enabled,
        bus.config().async_handlers,
        bus.config().store_path.display()
    );

    let database_url = std::env::var("DATABASE_URL")
        .ok()
        .filter(|url| !url.is_empty());
    let service = company_service(&bus, database_url.as_deref()).await?;
    if service.postgres().is_some() {
        println!("repository: PostgreSQL (DATABASE_URL), events through the outbox, relay running");
    }
    // With the feature, the use case runs in a request-like root span: its
    // `publish`, `dispatch` and `handle` spans are one trace under it.
    #[cfg(feature = "otel")]
    let request = events_examples::telemetry::request_span();
    #[cfg(not(feature = "otel"))]
    let request = tracing::Span::none();
    let company = service
        .use_case
        .execute(CreateCompanyDto {
            name: "Test Company".to_owned(),
            country_id: Uuid::new_v4(),
        })
        .instrument(request)
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
    if let Some(repository) = service.postgres() {
        println!(
            "recorded {} event(s) in the outbox with the company",
            company.recorded_in_outbox
        );
        let relayed = service.wait_relayed(Duration::from_secs(10)).await?;
        let stats = events_outbox::stats(repository.pool()).await?;
        println!(
            "outbox: {} pending, {} published, {} dead letters{}",
            stats.pending,
            stats.published,
            stats.dead_letters,
            if relayed {
                ""
            } else {
                " (not all relayed within 10 s)"
            }
        );
    }
    service.shutdown().await?;
    bus.shutdown(Duration::from_secs(10)).await?;
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
