//! `events outbox migrate|stats|list|dead-letters|requeue` against a real PostgreSQL (the test harness's server).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use events_core::{DomainEvent, Event, EventBus, RawEvent};
use events_outbox::{Relay, RelayOptions};
use serde_json::Value;
use sqlx::PgPool;

#[derive(DomainEvent, Debug, Clone)]
#[event(
    company = "testclean",
    service = "cli",
    version = 1,
    resource = "order",
    action = "placed"
)]
struct OrderPlaced {
    total: u32,
}

/// A handler that accepts every order.
struct Accept;

impl events_core::Handler<OrderPlaced> for Accept {
    async fn handle(&self, _: &Event<OrderPlaced>) -> events_core::HandlerResult {
        Ok(())
    }
}

/// Runs `events ARGS` in process with `DATABASE_URL` = `url` (or unset).
async fn events(url: Option<&str>, args: &[&str]) -> (u8, String, String) {
    let url = url.map(str::to_owned);
    let env = move |var: &str| (var == "DATABASE_URL").then(|| url.clone()).flatten();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let argv = std::iter::once("events").chain(args.iter().copied());
    let code = events_cli::run_with_env(argv, env, None, &mut out, &mut err).await;
    (
        code,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

async fn pool(url: &str) -> PgPool {
    PgPool::connect(url).await.unwrap()
}

async fn write_orders(pool: &PgPool, key: &str, totals: &[u32]) -> Vec<String> {
    let events: Vec<Event<OrderPlaced>> = totals
        .iter()
        .map(|&total| Event::new(OrderPlaced { total }))
        .collect();
    let ids = events.iter().map(|e| e.id().as_str().to_owned()).collect();
    let mut tx = pool.begin().await.unwrap();
    events_outbox::write(&mut tx, Some(key), events)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    ids
}

#[tokio::test]
async fn without_database_url_it_says_so() {
    let (code, out, err) = events(None, &["outbox", "stats"]).await;
    assert_eq!(code, events_cli::ERROR);
    assert_eq!(out, "");
    assert!(err.contains("DATABASE_URL is not set"), "{err}");
}

#[tokio::test]
async fn an_unreachable_database_is_an_error_without_the_password() {
    let (code, _, err) = events(
        Some("postgres://app:s3cret@127.0.0.1:1/app"),
        &["outbox", "stats"],
    )
    .await;
    assert_eq!(code, events_cli::ERROR);
    assert!(
        err.contains("cannot connect to the outbox database"),
        "{err}"
    );
    // The cause, not a pool's timeout.
    assert!(err.contains("refused"), "{err}");
    assert!(!err.contains("timed out"), "{err}");
    assert!(!err.contains("s3cret"), "{err}");
}

#[tokio::test]
async fn a_database_that_does_not_exist_is_reported_as_such() {
    let url = events_pg_tests::shared().url("no_such_database");
    let (code, _, err) = events(Some(&url), &["outbox", "stats"]).await;
    assert_eq!(code, events_cli::ERROR);
    assert!(
        err.contains(r#"database "no_such_database" does not exist"#),
        "{err}"
    );
}

#[tokio::test]
async fn a_malformed_url_is_reported_as_such() {
    let (code, _, err) = events(Some("postgres://[::1"), &["outbox", "stats"]).await;
    assert_eq!(code, events_cli::ERROR);
    assert!(err.contains("invalid IPv6 address"), "{err}");
    let (code, _, err) = events(Some("mysql://app@db/app"), &["outbox", "stats"]).await;
    assert_eq!(code, events_cli::ERROR);
    assert!(err.contains("not a PostgreSQL URL"), "{err}");
}

#[tokio::test]
async fn before_migrate_stats_says_to_migrate_then_migrate_is_idempotent() {
    let db = events_pg_tests::shared().database();
    let (code, _, err) = events(Some(&db.url), &["outbox", "stats"]).await;
    assert_eq!(code, events_cli::ERROR, "{err}");
    assert!(err.contains("run `events outbox migrate`"), "{err}");
    for _ in 0..2 {
        let (code, out, err) = events(Some(&db.url), &["outbox", "migrate"]).await;
        assert_eq!(code, events_cli::OK, "{err}");
        assert_eq!(
            out.trim(),
            format!("outbox schema at version {}", events_outbox::SCHEMA_VERSION)
        );
    }
    let (code, out, _) = events(Some(&db.url), &["outbox", "stats", "--json"]).await;
    assert_eq!(code, events_cli::OK);
    let stats: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(stats["pending"], 0);
    assert_eq!(stats["dead_letters"], 0);
    assert_eq!(stats["lag_ms"], Value::Null);
    let (_, out, _) = events(Some(&db.url), &["outbox", "list"]).await;
    assert_eq!(out.trim(), "nothing waiting in the outbox");
}

#[tokio::test]
async fn stats_and_list_show_the_waiting_rows_in_order_and_the_lag() {
    let db = events_pg_tests::shared().database();
    let pool = pool(&db.url).await;
    events_outbox::migrate(&pool).await.unwrap();
    let ids = write_orders(&pool, "order-1", &[10, 20, 30]).await;

    let (code, out, err) = events(Some(&db.url), &["outbox", "stats"]).await;
    assert_eq!(code, events_cli::OK, "{err}");
    assert!(out.contains("pending:      3"), "{out}");
    assert!(out.contains("dead letters: 0"), "{out}");
    assert!(out.contains("the oldest waiting row, recorded"), "{out}");

    let (_, out, _) = events(Some(&db.url), &["outbox", "stats", "--json"]).await;
    let stats: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(stats["pending"], 3);
    assert!(stats["lag_ms"].as_u64().is_some(), "{stats}");
    assert!(stats["oldest_pending"].as_str().is_some());

    let (_, out, _) = events(Some(&db.url), &["outbox", "list", "--json"]).await;
    let rows: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let listed: Vec<&str> = rows.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(listed, ids, "the relay's order: the record order");
    assert!(rows.iter().all(|r| r["aggregate_key"] == "order-1"));
    assert!(rows.iter().all(|r| r["name"] == OrderPlaced::EVENT_NAME));

    let (_, out, _) = events(Some(&db.url), &["outbox", "list", "--max", "1"]).await;
    assert_eq!(out.lines().count(), 1);
    assert!(
        out.contains(&ids[0]) && out.contains("aggregate=order-1"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_event_is_listed_as_a_dead_letter_and_requeued_by_id() {
    let db = events_pg_tests::shared().database();
    let pool = pool(&db.url).await;
    events_outbox::migrate(&pool).await.unwrap();
    // Attributes that do not fit `OrderPlaced`: the local bus cannot decode
    // them for its handler, a permanent refusal.
    let bad = RawEvent {
        id: "bad-order".into(),
        name: OrderPlaced::EVENT_NAME.to_owned(),
        occurred_on: chrono::Utc::now(),
        attributes: r#"{"total":"not a number"}"#.to_owned(),
        trace: None,
    };
    let mut tx = pool.begin().await.unwrap();
    events_outbox::write_raw(&mut tx, Some("order-9"), &[bad])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let bus = EventBus::builder()
        .without_store()
        .discover(false)
        .register_handler::<OrderPlaced, _>(Accept)
        .build()
        .unwrap();
    let relay = Relay::spawn(
        pool.clone(),
        bus,
        RelayOptions {
            poll_interval: Duration::from_millis(50),
            ..RelayOptions::default()
        },
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while events_outbox::stats(&pool).await.unwrap().dead_letters == 0 {
        assert!(Instant::now() < deadline, "no dead letter");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    relay.stop().await.unwrap();

    let (code, out, err) = events(Some(&db.url), &["outbox", "dead-letters"]).await;
    assert_eq!(code, events_cli::OK, "{err}");
    assert!(out.contains("bad-order"), "{out}");
    assert!(out.contains("last error:"), "{out}");
    let (_, out, _) = events(Some(&db.url), &["outbox", "dead-letters", "--json"]).await;
    let row: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(row["id"], "bad-order");
    assert!(row["dead_at"].as_str().is_some());
    assert!(row["attempts"].as_i64().unwrap() >= 1);

    let (code, _, err) = events(Some(&db.url), &["outbox", "requeue", "no-such-id"]).await;
    assert_eq!(code, events_cli::NOT_FOUND);
    assert!(err.contains("no dead letter with id `no-such-id`"), "{err}");
    let (code, out, _) = events(Some(&db.url), &["outbox", "requeue", "bad-order"]).await;
    assert_eq!(code, events_cli::OK);
    assert_eq!(out.trim(), "requeued bad-order");
    let stats = events_outbox::stats(&pool).await.unwrap();
    assert_eq!((stats.pending, stats.dead_letters), (1, 0));
}

#[test]
fn the_events_binary_runs_the_outbox_commands() {
    let db = events_pg_tests::shared().database();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_events"))
            .args(args)
            .env("DATABASE_URL", &db.url)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let (code, _, err) = run(&["outbox", "migrate"]);
    assert_eq!(code, Some(0), "{err}");
    let (code, out, err) = run(&["outbox", "--database-url", &db.url, "stats", "--json"]);
    assert_eq!(code, Some(0), "{err}");
    let stats: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(stats["pending"], 0);
    // After the command too, as a user writes it.
    let (code, out, err) = run(&["outbox", "stats", "--database-url", &db.url, "--json"]);
    assert_eq!(code, Some(0), "{err}");
    let stats: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(stats["pending"], 0);
}

#[tokio::test]
async fn a_max_of_zero_is_refused_rather_than_showing_nothing() {
    for command in ["list", "dead-letters"] {
        let (code, out, err) = events(None, &["outbox", command, "--max", "0"]).await;
        assert_eq!(code, events_cli::USAGE, "{command}: {err}");
        assert_eq!(out, "");
        assert!(err.contains("at least 1"), "{command}: {err}");
    }
}
