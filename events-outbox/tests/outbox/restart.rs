//! Relays that die or hang: their rows come back; a database restart is
//! survived by reconnecting.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use events_core::{Event, EventBus, Handler, HandlerResult};
use events_outbox::{Relay, RelayOptions};
use tokio::sync::Semaphore;

use crate::support::{self, tick, Sightings, Tick};

/// A handler that enters (counted), then waits for a permit of `gate`.
#[derive(Clone)]
struct Gated {
    entered: Arc<AtomicUsize>,
    gate: Arc<Semaphore>,
}

impl Handler<Tick> for Gated {
    async fn handle(&self, _event: &Event<Tick>) -> HandlerResult {
        self.entered.fetch_add(1, Ordering::SeqCst);
        let _permit = self.gate.acquire().await;
        Ok(())
    }
}

fn gated_bus(gated: &Gated) -> EventBus {
    EventBus::builder()
        .without_store()
        .discover(false)
        .register_handler::<Tick, _>(gated.clone())
        .build()
        .unwrap()
}

/// A relay whose session dies while it holds rows (its connection cut, as
/// when its process is killed): the rows are claimed again by another relay
/// at once, in order. The first relay's late mark fails and changes
/// nothing: at least once, the event handed over twice in all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_relays_rows_come_back_in_order() {
    let (db, pool) = support::database(4).await;
    let first = tick("acme", 0);
    let second = tick("acme", 1);
    support::commit(&pool, Some("acme"), vec![first.clone(), second.clone()]).await;

    let stuck = Gated {
        entered: Arc::default(),
        gate: Arc::new(Semaphore::new(0)),
    };
    let relay_a = Relay::spawn(
        support::pool(&db.url, 3).await,
        gated_bus(&stuck),
        RelayOptions {
            lease: Duration::from_secs(600),
            ..support::quick()
        },
    );
    support::until("relay A handing over the first event", || {
        let entered = stuck.entered.clone();
        async move { entered.load(Ordering::SeqCst) == 1 }
    })
    .await;

    // Relay A's claiming session dies.
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND application_name = $1",
    )
    .bind(events_outbox::relay::APPLICATION_NAME)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(killed, [true]);

    let sightings = Sightings::default();
    let relay_b = Relay::spawn(pool.clone(), sightings.bus(1), support::quick());
    support::until("relay B handing over both events", || {
        let s = sightings.clone();
        async move { s.count() >= 2 }
    })
    .await;
    assert_eq!(
        sightings.ids(),
        [first.id().to_string(), second.id().to_string()]
    );

    // A's hand-off ends; its mark fails on the dead session, harmlessly.
    stuck.gate.add_permits(100);
    relay_a.stop().await.unwrap();
    relay_b.stop().await.unwrap();
    assert_eq!(
        stuck.entered.load(Ordering::SeqCst),
        1,
        "A never took the second row"
    );
    let stats = events_outbox::stats(&pool).await.unwrap();
    assert_eq!((stats.pending, stats.published), (0, 2));
}

/// A hand-off that outlasts the lease counts as a retryable failure: the
/// row is tried again and leaves, its last error saying why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_off_longer_than_the_lease_is_tried_again() {
    let (_db, pool) = support::database(4).await;
    let event = tick("acme", 0);
    support::commit(&pool, Some("acme"), vec![event.clone()]).await;
    // No permit: the first hand-off waits until the lease ends it; then the
    // test adds the permits the next one takes.
    let slow = Gated {
        entered: Arc::default(),
        gate: Arc::new(Semaphore::new(0)),
    };
    let relay = Relay::spawn(
        pool.clone(),
        gated_bus(&slow),
        RelayOptions {
            lease: Duration::from_millis(300),
            ..support::quick()
        },
    );
    support::until("the first hand-off given up", || {
        let pool = pool.clone();
        async move {
            let attempts: i32 = sqlx::query_scalar("SELECT attempts FROM events_outbox.messages")
                .fetch_one(&pool)
                .await
                .unwrap();
            attempts >= 1
        }
    })
    .await;
    slow.gate.add_permits(100);
    support::until("the row published", || {
        let pool = pool.clone();
        async move { events_outbox::stats(&pool).await.unwrap().published == 1 }
    })
    .await;
    relay.stop().await.unwrap();
    let (attempts, error): (i32, Option<String>) =
        sqlx::query_as("SELECT attempts, last_error FROM events_outbox.messages")
            .fetch_one(&pool)
            .await
            .unwrap();
    // At least one hand-off given up (another may have begun before the
    // permits came), then the one that succeeded.
    assert!(attempts >= 2, "{attempts}");
    let error = error.unwrap();
    assert!(error.starts_with("LeaseExpired: "), "{error}");
    assert_eq!(slow.entered.load(Ordering::SeqCst), attempts as usize);
}

/// The database restarts under a running relay (a crash: SIGKILL of the
/// server, then recovery): the relay and its listener reconnect by
/// themselves, and events committed afterwards leave as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_reconnects_after_the_database_restarts() {
    let mut server = tokio::task::spawn_blocking(events_pg_tests::PgServer::start)
        .await
        .unwrap();
    let db = server.database();
    let pool = support::pool(&db.url, 4).await;
    events_outbox::migrate(&pool).await.unwrap();
    let sightings = Sightings::default();
    let relay = Relay::spawn(pool.clone(), sightings.bus(0), support::quick());
    support::commit(&pool, Some("acme"), vec![tick("acme", 0)]).await;
    support::until("the first event", || {
        let s = sightings.clone();
        async move { s.count() == 1 }
    })
    .await;

    let server = tokio::task::spawn_blocking(move || {
        server.kill();
        server.restart();
        server
    })
    .await
    .unwrap();
    // Writers retry until the server accepts connections again.
    let after = tick("acme", 1);
    support::until("a commit after the restart", || {
        let pool = pool.clone();
        let after = after.clone();
        async move {
            let Ok(mut tx) = pool.begin().await else {
                return false;
            };
            if events_outbox::write(&mut tx, Some("acme"), vec![after])
                .await
                .is_err()
            {
                return false;
            }
            tx.commit().await.is_ok()
        }
    })
    .await;
    support::until("the event committed after the restart", || {
        let s = sightings.clone();
        async move { s.count() >= 2 }
    })
    .await;
    relay.stop().await.unwrap();
    assert_eq!(sightings.by_aggregate()["acme"], [0, 1]);
    drop(server);
}
