//! The company example on PostgreSQL (`DATABASE_URL`) and without it: on PostgreSQL the company and its event commit together and the relay publishes the event once; a rolled back or failed save publishes nothing, ever; without a database, the embedded default.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use events_core::{Event, EventBus, Handler, HandlerResult};
use events_examples::application::{CreateCompanyDto, TransactionalCompanyRepository};
use events_examples::domain::aggregates::CompanyAggregate;
use events_examples::domain::events::CompanyCreated;
use events_examples::infrastructure::postgres::PostgresCompanyRepository;
use events_examples::startup::company_service;
use uuid::Uuid;

/// One event the bus handed to the handler: its id, time and company.
type Sighting = (String, chrono::DateTime<chrono::Utc>, Uuid);

/// What the bus handed to the handlers.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<Sighting>>>);

impl Handler<CompanyCreated> for Seen {
    async fn handle(&self, event: &Event<CompanyCreated>) -> HandlerResult {
        self.0.lock().unwrap().push((
            event.id().as_str().to_owned(),
            event.occurred_on(),
            event.company_id,
        ));
        Ok(())
    }
}

fn bus(seen: &Seen) -> EventBus {
    EventBus::builder()
        .without_store()
        .discover(false)
        .register_handler::<CompanyCreated, _>(seen.clone())
        .build()
        .unwrap()
}

fn dto(name: &str) -> CreateCompanyDto {
    CreateCompanyDto {
        name: name.to_owned(),
        country_id: Uuid::new_v4(),
    }
}

async fn wait_seen(seen: &Seen, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.0.lock().unwrap().len() < n {
        assert!(
            Instant::now() < deadline,
            "the relay did not publish {n} event(s)"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_database_url_the_company_and_its_event_commit_together_and_leave_once() {
    let db = events_pg_tests::shared().database();
    let seen = Seen::default();
    let bus = bus(&seen);
    let service = company_service(&bus, Some(&db.url)).await.unwrap();
    let repository = service.postgres().unwrap().clone();

    // A transaction that saves a company and records its event, then rolls
    // back: no row, no event.
    let mut rolled_back = CompanyAggregate::create("Rolled Back", Uuid::new_v4());
    let rolled_back_event = rolled_back.events().events()[0].id().as_str().to_owned();
    let mut tx = repository.pool().begin().await.unwrap();
    PostgresCompanyRepository::insert(&mut tx, &rolled_back)
        .await
        .unwrap();
    events_outbox::write_recorded(
        &mut tx,
        &rolled_back.id.to_string(),
        rolled_back.events_mut(),
    )
    .await
    .unwrap();
    tx.rollback().await.unwrap();

    // One that commits, through the use case.
    let company = service.use_case.execute(dto("Test Company")).await.unwrap();
    assert_eq!(company.recorded_in_outbox, 1);
    assert!(
        company.published.is_empty(),
        "nothing leaves before the relay"
    );
    let row: (String, chrono::DateTime<chrono::Utc>, String) =
        sqlx::query_as("SELECT id, occurred_on, aggregate_key FROM events_outbox.messages")
            .fetch_one(repository.pool())
            .await
            .unwrap();
    assert_eq!(row.2, company.id.to_string());

    wait_seen(&seen, 1).await;
    assert!(service.wait_relayed(Duration::from_secs(60)).await.unwrap());
    service.shutdown().await.unwrap();
    let seen = seen.0.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "published exactly once: {seen:?}");
    let (id, occurred_on, company_id) = &seen[0];
    assert_eq!((id, company_id), (&row.0, &company.id));
    assert_eq!(occurred_on.timestamp_micros(), row.1.timestamp_micros());
    assert_ne!(id, &rolled_back_event);
    let found = repository.find(company.id).await.unwrap().unwrap();
    assert_eq!(found.name, "Test Company");
    assert!(found.events().is_empty());
    assert!(repository.find(rolled_back.id).await.unwrap().is_none());
    let stats = events_outbox::stats(repository.pool()).await.unwrap();
    assert_eq!(
        (stats.pending, stats.published, stats.dead_letters),
        (0, 1, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_save_records_nothing_and_the_aggregate_keeps_its_events() {
    let db = events_pg_tests::shared().database();
    let repository = PostgresCompanyRepository::connect(&db.url).await.unwrap();
    repository.migrate().await.unwrap();
    repository.migrate().await.unwrap(); // idempotent

    let mut company = CompanyAggregate::create("Twice", Uuid::new_v4());
    let mut copy = company.clone();
    assert_eq!(repository.save_with_events(&mut copy).await.unwrap(), 1);
    assert!(
        copy.events().is_empty(),
        "recorded: the recorder is drained"
    );
    // The same company again: the insert fails, the transaction rolls back.
    let err = repository.save_with_events(&mut company).await.unwrap_err();
    assert!(err.to_string().contains("companies_pkey"), "{err}");
    assert_eq!(company.events().len(), 1, "a failed save keeps the events");
    let stats = events_outbox::stats(repository.pool()).await.unwrap();
    assert_eq!(stats.pending, 1, "only the first save's event");
}

#[tokio::test]
async fn without_database_url_it_stays_on_the_embedded_default() {
    let seen = Seen::default();
    let bus = bus(&seen);
    let service = company_service(&bus, None).await.unwrap();
    assert!(service.postgres().is_none());
    let company = service.use_case.execute(dto("Embedded")).await.unwrap();
    assert_eq!(company.recorded_in_outbox, 0);
    assert_eq!(company.published.len(), 1);
    assert!(service.wait_relayed(Duration::ZERO).await.unwrap());
    service.shutdown().await.unwrap();
    let seen: HashMap<String, Uuid> = seen
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|(id, _, company)| (id.clone(), *company))
        .collect();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen.values().next(), Some(&company.id));
}

#[tokio::test]
async fn an_unreachable_database_url_says_why_at_once() {
    // A pool alone would retry until its timeout and say only that it
    // timed out; the repository says what went wrong.
    let refused = PostgresCompanyRepository::connect("postgres://app@127.0.0.1:1/app").await;
    let message = refused.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains("Connection refused"), "{message}");

    let url = events_pg_tests::shared().url("no_such_database");
    let missing = PostgresCompanyRepository::connect(&url).await;
    let message = missing.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        message.contains(r#"database "no_such_database" does not exist"#),
        "{message}"
    );
}
