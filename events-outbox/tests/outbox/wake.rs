//! Waking up and running: a commit's notification starts a round at once;
//! without one, the polling fallback finds the row; `run_until` runs a relay
//! as a process's `main` does.

use std::time::Duration;

use events_outbox::{Relay, RelayOptions};

use crate::support::{self, tick, Sightings};

/// With polling an hour apart, events committed one after another still
/// leave at once: each commit's `NOTIFY` wakes the relay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_wakes_the_relay() {
    let (_db, pool) = support::database(4).await;
    let sightings = Sightings::default();
    let relay = Relay::spawn(
        pool.clone(),
        sightings.bus(0),
        RelayOptions {
            poll_interval: Duration::from_secs(3600),
            workers: 1,
            ..support::quick()
        },
    );
    support::until("the relay listening", || {
        let pool = pool.clone();
        async move {
            let listening: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND query LIKE 'LISTEN%'",
            )
            .fetch_one(&pool)
            .await
            .unwrap();
            listening == 1
        }
    })
    .await;
    for n in 0..5 {
        support::commit(&pool, Some("acme"), vec![tick("acme", n)]).await;
        support::until("the committed event", || {
            let s = sightings.clone();
            async move { s.count() == n as usize + 1 }
        })
        .await;
    }
    relay.stop().await.unwrap();
    assert_eq!(sightings.by_aggregate()["acme"], [0, 1, 2, 3, 4]);
}

/// A row committed without a notification (written by hand, or its
/// notification lost while the listener reconnected) is found by polling.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_finds_a_row_nobody_notified() {
    let (_db, pool) = support::database(4).await;
    let sightings = Sightings::default();
    let relay = Relay::spawn(pool.clone(), sightings.bus(0), support::quick());
    // Let the relay's first rounds pass, then write without NOTIFY.
    support::commit(&pool, Some("acme"), vec![tick("acme", 0)]).await;
    support::until("the notified event", || {
        let s = sightings.clone();
        async move { s.count() == 1 }
    })
    .await;
    let raw = events_core::RawEvent::from_event(&tick("acme", 1)).unwrap();
    sqlx::query(
        "INSERT INTO events_outbox.messages (id, name, occurred_on, aggregate_key, detail)
         VALUES ($1, $2, $3, 'acme', $4)",
    )
    .bind(raw.id.as_str())
    .bind(&raw.name)
    .bind(raw.occurred_on)
    .bind(events_core::wire::encode_detail(&raw))
    .execute(&pool)
    .await
    .unwrap();
    support::until("the unnotified event", || {
        let s = sightings.clone();
        async move { s.count() == 2 }
    })
    .await;
    relay.stop().await.unwrap();
    assert_eq!(sightings.by_aggregate()["acme"], [0, 1]);
}

/// `run_until`, the `main` of a relay process: migrates a fresh database,
/// relays until the shutdown future completes, then stops and returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_until_migrates_relays_and_stops_on_shutdown() {
    let db = tokio::task::spawn_blocking(|| events_pg_tests::shared().database())
        .await
        .unwrap();
    let pool = support::pool(&db.url, 4).await;
    let sightings = Sightings::default();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let process = tokio::spawn(events_outbox::run_until(
        pool.clone(),
        sightings.bus(0),
        support::quick(),
        async move {
            let _ = stopped.await;
        },
    ));
    // The schema appears (migrated by run_until), then events leave.
    support::until("the schema", || {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, Option<String>>(
                "SELECT to_regclass('events_outbox.messages')::text",
            )
            .fetch_one(&pool)
            .await
            .unwrap()
            .is_some()
        }
    })
    .await;
    support::commit(&pool, Some("acme"), vec![tick("acme", 0)]).await;
    support::until("the event", || {
        let s = sightings.clone();
        async move { s.count() == 1 }
    })
    .await;
    assert!(!process.is_finished());
    stop.send(()).unwrap();
    process.await.unwrap().unwrap();
}
