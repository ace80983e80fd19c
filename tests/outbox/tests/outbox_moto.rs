//! The outbox through EventBridge (moto) to SQS: a committed company's event arrives once and Python decodes it, a rolled back one never; an EventBridge outage holds the rows, the relay backs off, and everything leaves once it is back.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_eventbridge::config::retry::RetryConfig;
use events_aws_tests::moto::{python, workspace_root, Moto};
use events_core::{wire, EventBus, Mode};
use events_eventbridge::EventBridgePublisher;
use events_examples::application::{CreateCompanyDto, CreateCompanyUseCase};
use events_examples::domain::aggregates::CompanyAggregate;
use events_examples::infrastructure::postgres::PostgresCompanyRepository;
use events_outbox::{Relay, RelayOptions};
use events_outbox_tests::Proxy;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(120);

/// A bus in eventbridge mode publishing to `bus` at `endpoint` (moto, or a
/// proxy in front of it), the SDK's own retries off: the relay's backoff is
/// the one under test.
async fn eventbridge_bus(moto: &Moto, endpoint: &str, bus: &str) -> EventBus {
    let config = aws_sdk_eventbridge::config::Builder::from(&moto.sdk_config().await)
        .endpoint_url(endpoint)
        .retry_config(RetryConfig::disabled())
        .build();
    let publisher = EventBridgePublisher::builder()
        .bus(bus)
        .client(aws_sdk_eventbridge::Client::from_conf(config))
        .build()
        .await
        .unwrap();
    EventBus::builder()
        .mode(Mode::EventBridge)
        .without_store()
        .discover(false)
        .publisher(Arc::new(publisher))
        .build()
        .unwrap()
}

fn options() -> RelayOptions {
    RelayOptions {
        poll_interval: Duration::from_millis(100),
        retry_backoff: Duration::from_millis(200),
        max_backoff: Duration::from_secs(1),
        lease: Duration::from_secs(10),
        ..RelayOptions::default()
    }
}

/// Rows of the outbox: id → (aggregate key, occurred_on in µs).
async fn outbox_rows(pool: &PgPool) -> BTreeMap<String, (String, i64)> {
    sqlx::query_as::<_, (String, String, chrono::DateTime<chrono::Utc>)>(
        "SELECT id, aggregate_key, occurred_on FROM events_outbox.messages",
    )
    .fetch_all(pool)
    .await
    .unwrap()
    .into_iter()
    .map(|(id, key, at)| (id, (key, at.timestamp_micros())))
    .collect()
}

async fn pending(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events_outbox.messages WHERE published_at IS NULL")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Drains the queue until `expected` messages came (bounded).
async fn receive(moto: &Moto, queue_url: &str, expected: usize) -> Vec<String> {
    let deadline = Instant::now() + WAIT;
    let mut bodies = Vec::new();
    while bodies.len() < expected {
        assert!(
            Instant::now() < deadline,
            "{} of {expected} messages in the queue after {WAIT:?}",
            bodies.len()
        );
        bodies.extend(moto.drain(queue_url).await);
    }
    // Anything more (a duplicate) shows up in a last drain.
    bodies.extend(moto.drain(queue_url).await);
    bodies
}

/// `package-events-bus` decodes the SQS bodies (tests/interop/moto_interop.py).
fn python_decode(moto: &Moto, bodies: &[String]) -> Vec<Value> {
    let mut child = Command::new(python())
        .arg(workspace_root().join("tests/interop/moto_interop.py"))
        .arg("decode-sqs")
        .envs(moto.env())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(bodies).unwrap().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python decode-sqs failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Vec<Value>>(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committed_company_reaches_sqs_once_and_python_decodes_it_a_rolled_back_one_never() {
    let db = events_pg_tests::shared().database();
    let repository = PostgresCompanyRepository::connect(&db.url).await.unwrap();
    repository.migrate().await.unwrap();
    let moto = Moto::start();
    let route = moto.bus_to_queue("outbox-company").await;
    let bus = eventbridge_bus(&moto, &moto.endpoint(), &route.bus).await;
    let relay = Relay::spawn(repository.pool().clone(), bus, options());

    // Saved and recorded, then rolled back: no row, never published.
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

    // Committed through the use case: the company and its event together.
    let use_case = CreateCompanyUseCase::with_outbox(Arc::new(repository.clone()));
    let mut companies = Vec::new();
    for i in 0..3 {
        let company = use_case
            .execute(CreateCompanyDto {
                name: format!("Outbox Company {i} — Ñandú"),
                country_id: Uuid::new_v4(),
            })
            .await
            .unwrap();
        assert_eq!(company.recorded_in_outbox, 1);
        assert!(
            company.published.is_empty(),
            "nothing published before the commit"
        );
        assert!(repository.find(company.id).await.unwrap().is_some());
        companies.push(company);
    }
    assert!(repository.find(rolled_back.id).await.unwrap().is_none());

    let bodies = receive(&moto, &route.queue_url, 3).await;
    relay.stop().await.unwrap();
    assert_eq!(
        bodies.len(),
        3,
        "each committed event exactly once: {bodies:?}"
    );
    let rows = outbox_rows(repository.pool()).await;
    assert_eq!(rows.len(), 3);
    assert!(!rows.contains_key(&rolled_back_event));

    // What Rust sees in the queue, and what Python decodes, is each
    // committed event with its id and time.
    for body in &bodies {
        let envelope = wire::decode_envelope(body).unwrap();
        let (_, at) = &rows[envelope.event.id.as_str()];
        assert_eq!(envelope.event.occurred_on.timestamp_micros(), *at);
    }
    let decoded = python_decode(&moto, &bodies);
    let from_python: BTreeMap<String, Value> = decoded
        .into_iter()
        .map(|e| (e["id"].as_str().unwrap().to_owned(), e))
        .collect();
    assert_eq!(
        from_python.keys().collect::<BTreeSet<_>>(),
        rows.keys().collect::<BTreeSet<_>>()
    );
    for (id, (company_id, at)) in &rows {
        let event = &from_python[id];
        assert_eq!(event["name"], "testclean.api.1.event.company.created");
        assert_eq!(event["occurred_on_micros"].as_i64().unwrap(), *at);
        assert_eq!(
            event["attributes"]["company_id"].as_str().unwrap(),
            company_id
        );
        let company = companies
            .iter()
            .find(|c| c.id.to_string() == *company_id)
            .unwrap();
        assert_eq!(
            event["attributes"]["company_name"].as_str().unwrap(),
            company.name
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eventbridge_down_for_a_stretch_rows_wait_the_relay_backs_off_and_all_leave_once_back() {
    let db = events_pg_tests::shared().database();
    let repository = PostgresCompanyRepository::connect(&db.url).await.unwrap();
    repository.migrate().await.unwrap();
    let pool = repository.pool().clone();
    let mut moto = Moto::start();
    let route = moto.bus_to_queue("outbox-outage").await;
    // The relay reaches moto through a proxy, so moto can be stopped and
    // started again (empty) and given its bus back before the relay sees it.
    let moto_addr = moto
        .endpoint()
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let proxy = Proxy::start(moto_addr).await.unwrap();
    let bus = eventbridge_bus(&moto, &proxy.url(), &route.bus).await;
    let relay = Relay::spawn(pool.clone(), bus, options());
    let use_case = CreateCompanyUseCase::with_outbox(Arc::new(repository.clone()));
    let create = |i: usize| CreateCompanyDto {
        name: format!("Company {i}"),
        country_id: Uuid::new_v4(),
    };

    for i in 0..10 {
        use_case.execute(create(i)).await.unwrap();
    }
    let before = receive(&moto, &route.queue_url, 10).await;
    assert_eq!(before.len(), 10);
    let deadline = Instant::now() + WAIT;
    while pending(&pool).await > 0 {
        assert!(
            Instant::now() < deadline,
            "rows not marked after the queue got them"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // EventBridge goes away.
    proxy.down();
    moto.stop();
    for i in 10..40 {
        use_case.execute(create(i)).await.unwrap();
    }
    // The rows wait: the relay tried, failed (retryable), and put them off;
    // only the head of each aggregate is tried. Wait until one was tried 3
    // times: its next attempt is backed off (doubling, ±25 %).
    let deadline = Instant::now() + WAIT;
    let (attempts, backoff_ms, error): (i32, f64, String) = loop {
        let row: Option<(i32, f64, String)> = sqlx::query_as(
            "SELECT attempts,
                    extract(epoch FROM available_at - last_attempt_at)::float8 * 1000,
                    last_error
             FROM events_outbox.messages
             WHERE published_at IS NULL AND attempts >= 3
             ORDER BY attempts DESC LIMIT 1",
        )
        .fetch_optional(&pool)
        .await
        .unwrap();
        if let Some(row) = row {
            break row;
        }
        assert!(Instant::now() < deadline, "the relay never retried 3 times");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(pending(&pool).await, 30, "every row waits in the outbox");
    let dead: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events_outbox.messages WHERE dead_at IS NOT NULL")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(dead, 0, "an outage makes no dead letter");
    // retry_backoff 200 ms doubled per attempt, capped at 1 s, -25 % jitter.
    let floor = (200.0 * 2f64.powi(attempts - 1)).min(1000.0) * 0.75;
    assert!(
        backoff_ms >= floor - 1.0,
        "attempt {attempts} was put off by only {backoff_ms} ms (expected >= {floor})"
    );
    assert!(!error.is_empty());
    eprintln!(
        "during the outage: a row tried {attempts} times, next in {backoff_ms:.0} ms ({error})"
    );

    // EventBridge comes back (a fresh moto, its bus recreated first).
    moto.restart();
    let route = moto.bus_to_queue("outbox-outage").await;
    proxy.up();
    let after = receive(&moto, &route.queue_url, 30).await;
    relay.stop().await.unwrap();
    assert_eq!(after.len(), 30, "each waiting event exactly once");
    let ids: BTreeSet<String> = before
        .iter()
        .chain(&after)
        .map(|b| {
            wire::decode_envelope(b)
                .unwrap()
                .event
                .id
                .as_str()
                .to_owned()
        })
        .collect();
    let rows = outbox_rows(&pool).await;
    assert_eq!(ids, rows.keys().cloned().collect::<BTreeSet<_>>());
    assert_eq!(pending(&pool).await, 0);
    assert_eq!(python_decode(&moto, &after).len(), 30);
}
