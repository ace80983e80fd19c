//! What failures become: retryable ones back off and leave later, permanent
//! ones become dead letters (listed, requeued) without holding back anything,
//! an unreadable row too; the outbox lag.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use events_core::publisher::BoxFuture;
use events_core::{Accepted, EventBus, PublishError, Publisher, RawEvent};
use events_outbox::{Relay, RelayOptions};

use crate::support::{self, tick, Tick};

/// One call of the scripted publisher for one event.
#[derive(Debug, Clone)]
struct Attempt {
    id: String,
    aggregate: String,
    n: u32,
    at: Instant,
    accepted: bool,
}

/// A remote bus that refuses `poison` #0 for good once, throttles `flaky`
/// #0 twice, and accepts everything else, recording every attempt.
#[derive(Clone, Default)]
struct Scripted {
    attempts: Arc<Mutex<Vec<Attempt>>>,
}

impl Scripted {
    fn attempts(&self) -> Vec<Attempt> {
        self.attempts.lock().unwrap().clone()
    }

    fn of(&self, aggregate: &str, n: u32) -> Vec<Attempt> {
        self.attempts()
            .into_iter()
            .filter(|a| a.aggregate == aggregate && a.n == n)
            .collect()
    }

    fn accepted(&self) -> usize {
        self.attempts().iter().filter(|a| a.accepted).count()
    }

    fn answer(&self, raw: &RawEvent) -> Result<Accepted, PublishError> {
        let tick = raw.decode::<Tick>().unwrap().into_payload();
        let mut attempts = self.attempts.lock().unwrap();
        let before = attempts.iter().filter(|a| a.id == raw.id.as_str()).count();
        let answer = match (tick.aggregate.as_str(), tick.n, before) {
            ("poison", 0, 0) => Err(PublishError::permanent(
                "ValidationException",
                "event too large",
            )),
            ("flaky", 0, 0 | 1) => Err(PublishError::retryable(
                "ThrottlingException",
                "rate exceeded",
            )),
            _ => Ok(Accepted {
                remote_id: Some(format!("remote-{}", raw.id)),
            }),
        };
        attempts.push(Attempt {
            id: raw.id.to_string(),
            aggregate: tick.aggregate,
            n: tick.n,
            at: Instant::now(),
            accepted: answer.is_ok(),
        });
        answer
    }
}

impl Publisher for Scripted {
    fn name(&self) -> &str {
        "scripted"
    }

    fn publish<'a>(
        &'a self,
        events: &'a [RawEvent],
    ) -> BoxFuture<'a, Vec<Result<Accepted, PublishError>>> {
        Box::pin(async move { events.iter().map(|raw| self.answer(raw)).collect() })
    }
}

fn remote_bus(publisher: &Scripted) -> EventBus {
    EventBus::builder()
        .without_store()
        .discover(false)
        .publisher(Arc::new(publisher.clone()))
        .build()
        .unwrap()
}

/// Done-when 4 with a scripted remote bus: the permanently refused event is
/// a dead letter (error, attempts, last attempt) and the later rows of its
/// aggregate are sent past it (the documented choice); the throttled one
/// backs off (doubling, within the jitter) and leaves, the row behind it
/// only after it; the other aggregates flow meanwhile. Requeued, the dead
/// letter leaves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_becomes_a_dead_letter_and_a_throttled_row_backs_off_in_order() {
    let (_db, pool) = support::database(4).await;
    let publisher = Scripted::default();
    support::commit(
        &pool,
        Some("poison"),
        (0..3).map(|n| tick("poison", n)).collect(),
    )
    .await;
    support::commit(
        &pool,
        Some("flaky"),
        (0..2).map(|n| tick("flaky", n)).collect(),
    )
    .await;
    for a in 0..10 {
        let key = format!("ok-{a}");
        support::commit(&pool, Some(&key), vec![tick(&key, 0), tick(&key, 1)]).await;
    }
    // All written before the relay starts: its first round takes every head.
    let base = Duration::from_secs(1);
    let relay = Relay::spawn(
        pool.clone(),
        remote_bus(&publisher),
        RelayOptions {
            retry_backoff: base,
            max_backoff: Duration::from_secs(5),
            ..support::quick()
        },
    );
    let others = 20;
    support::until("everything but the dead letter accepted", || {
        let p = publisher.clone();
        async move { p.accepted() >= 2 + 2 + others }
    })
    .await;

    // The dead letter, listed with its error, attempts and last attempt.
    let dead = events_outbox::list_dead_letters(&pool, 10).await.unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    let poison0 = &publisher.of("poison", 0)[0];
    assert_eq!(dead[0].id, poison0.id);
    assert_eq!(dead[0].aggregate_key.as_deref(), Some("poison"));
    assert_eq!(dead[0].attempts, 1);
    assert_eq!(
        dead[0].last_error.as_deref(),
        Some("ValidationException: event too large")
    );
    assert!(dead[0].last_attempt_at.is_some() && dead[0].dead_at.is_some());

    // Sent past it: poison #1 and #2 accepted, in order, after #0's refusal.
    let attempts = publisher.attempts();
    let position = |aggregate: &str, n: u32| {
        attempts
            .iter()
            .position(|a| a.aggregate == aggregate && a.n == n)
            .unwrap()
    };
    assert!(position("poison", 0) < position("poison", 1));
    assert!(position("poison", 1) < position("poison", 2));

    // The throttled row: three attempts, each wait at least the backoff's
    // lower bound (0.75 x base, then 0.75 x 2 base); the row behind it was
    // never tried before it was accepted.
    let flaky0 = publisher.of("flaky", 0);
    assert_eq!(
        flaky0.iter().map(|a| a.accepted).collect::<Vec<_>>(),
        [false, false, true]
    );
    assert!(
        flaky0[1].at - flaky0[0].at >= base.mul_f64(0.75),
        "{flaky0:?}"
    );
    assert!(
        flaky0[2].at - flaky0[1].at >= base.mul_f64(1.5),
        "{flaky0:?}"
    );
    let flaky1 = publisher.of("flaky", 1);
    assert_eq!(flaky1.len(), 1);
    assert!(flaky1[0].at >= flaky0[2].at);

    // The other aggregates flowed meanwhile: all accepted before flaky #0.
    for a in 0..10 {
        for n in 0..2 {
            let other = publisher.of(&format!("ok-{a}"), n);
            assert_eq!(other.len(), 1);
            assert!(other[0].at < flaky0[2].at, "ok-{a} #{n} waited for flaky");
        }
    }
    let row: (i32, Option<String>) =
        sqlx::query_as("SELECT attempts, last_error FROM events_outbox.messages WHERE id = $1")
            .bind(&flaky0[0].id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(row, (3, Some("ThrottlingException: rate exceeded".into())));

    // Requeued, the dead letter leaves (the script accepts a second try).
    assert!(!events_outbox::requeue(&pool, "no-such-id").await.unwrap());
    assert!(events_outbox::requeue(&pool, &poison0.id).await.unwrap());
    support::until("the requeued dead letter accepted", || {
        let p = publisher.clone();
        async move { p.of("poison", 0).iter().any(|a| a.accepted) }
    })
    .await;
    support::until("no row left waiting", || {
        let pool = pool.clone();
        async move { events_outbox::stats(&pool).await.unwrap().pending == 0 }
    })
    .await;
    relay.stop().await.unwrap();
    assert!(events_outbox::list_dead_letters(&pool, 10)
        .await
        .unwrap()
        .is_empty());
    let stats = events_outbox::stats(&pool).await.unwrap();
    assert_eq!((stats.pending, stats.dead_letters), (0, 0));
    let mut per_event: HashMap<String, usize> = HashMap::new();
    for a in publisher.attempts().iter().filter(|a| a.accepted) {
        *per_event.entry(a.id.clone()).or_default() += 1;
    }
    assert!(
        per_event.values().all(|&n| n == 1),
        "accepted once each: {per_event:?}"
    );
    assert_eq!(per_event.len(), 2 * 10 + 3 + 2);
}

/// A row whose detail cannot be read (written by hand, damaged) becomes a
/// dead letter and does not hold back the row behind it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_row_becomes_a_dead_letter_without_blocking() {
    let (_db, pool) = support::database(4).await;
    sqlx::query(
        "INSERT INTO events_outbox.messages (id, name, occurred_on, aggregate_key, detail)
         VALUES ('broken', 'testclean.outbox.1.event.tick.counted', now(), 'acme', 'not json')",
    )
    .execute(&pool)
    .await
    .unwrap();
    let good = tick("acme", 1);
    support::commit(&pool, Some("acme"), vec![good.clone()]).await;
    let sightings = support::Sightings::default();
    let relay = Relay::spawn(pool.clone(), sightings.bus(0), support::quick());
    support::until("the row behind it handed over", || {
        let s = sightings.clone();
        async move { s.count() >= 1 }
    })
    .await;
    relay.stop().await.unwrap();
    assert_eq!(sightings.ids(), [good.id().to_string()]);
    let dead = events_outbox::list_dead_letters(&pool, 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].id, "broken");
    let error = dead[0].last_error.as_deref().unwrap();
    assert!(
        error.starts_with("UnreadableRow: the row's detail cannot be read"),
        "{error}"
    );
}

/// The outbox lag is the age of the oldest waiting row; waiting rows are
/// listed oldest first.
#[tokio::test]
async fn stats_show_the_lag_of_the_oldest_waiting_row() {
    let (_db, pool) = support::database(2).await;
    assert_eq!(events_outbox::stats(&pool).await.unwrap().lag, None);
    support::commit(&pool, Some("acme"), vec![tick("acme", 0), tick("acme", 1)]).await;
    support::commit(&pool, None, vec![tick("loose", 0)]).await;
    sqlx::query(
        "UPDATE events_outbox.messages SET recorded_at = now() - interval '10 minutes'
         WHERE seq = (SELECT min(seq) FROM events_outbox.messages)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let stats = events_outbox::stats(&pool).await.unwrap();
    assert_eq!(stats.pending, 3);
    let lag = stats.lag.unwrap();
    assert!(
        lag >= Duration::from_secs(600) && lag < Duration::from_secs(700),
        "{lag:?}"
    );
    assert!(stats.oldest_pending.is_some());
    let pending = events_outbox::list_pending(&pool, 2).await.unwrap();
    assert_eq!(pending.len(), 2);
    assert!(pending[0].seq < pending[1].seq);
    assert_eq!(pending[0].aggregate_key.as_deref(), Some("acme"));
    assert_eq!(pending[0].attempts, 0);
}

/// The retention: published rows older than it are deleted, younger ones,
/// waiting ones and dead letters are kept.
#[tokio::test]
async fn published_rows_are_deleted_after_the_retention() {
    let (_db, pool) = support::database(2).await;
    for n in 0..4 {
        support::commit(&pool, Some("acme"), vec![tick("acme", n)]).await;
    }
    sqlx::raw_sql(
        "UPDATE events_outbox.messages SET published_at = now() - interval '2 hours' WHERE seq IN
             (SELECT seq FROM events_outbox.messages ORDER BY seq LIMIT 2);
         UPDATE events_outbox.messages SET published_at = now() - interval '10 minutes' WHERE seq =
             (SELECT seq FROM events_outbox.messages ORDER BY seq OFFSET 2 LIMIT 1)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let deleted = events_outbox::purge_published(&pool, Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(deleted, 2);
    let stats = events_outbox::stats(&pool).await.unwrap();
    assert_eq!((stats.pending, stats.published), (1, 1));
    assert_eq!(
        events_outbox::purge_published(&pool, Duration::ZERO)
            .await
            .unwrap(),
        1
    );
    assert_eq!(events_outbox::stats(&pool).await.unwrap().pending, 1);
}
