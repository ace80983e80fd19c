//! What the outbox tests share: a fresh migrated database, the test event,
//! a recording handler, bounded polling.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use events_core::{DomainEvent, Event, EventBus, Handler, HandlerResult};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

/// One event of aggregate `aggregate`, the `n`th it recorded.
#[derive(DomainEvent, Debug, Clone, PartialEq)]
#[event(
    company = "testclean",
    service = "outbox",
    version = 1,
    resource = "tick",
    action = "counted"
)]
pub struct Tick {
    pub aggregate: String,
    pub n: u32,
}

pub fn tick(aggregate: &str, n: u32) -> Event<Tick> {
    Event::new(Tick {
        aggregate: aggregate.to_owned(),
        n,
    })
}

/// A fresh database on the binary's server, migrated, with a pool of
/// `connections`.
pub async fn database(connections: u32) -> (events_pg_tests::Database, PgPool) {
    let db = tokio::task::spawn_blocking(|| events_pg_tests::shared().database())
        .await
        .unwrap();
    let pool = pool(&db.url, connections).await;
    events_outbox::migrate(&pool).await.unwrap();
    (db, pool)
}

pub async fn pool(url: &str, connections: u32) -> PgPool {
    PgPoolOptions::new()
        .max_connections(connections)
        .acquire_timeout(Duration::from_secs(60))
        .connect(url)
        .await
        .unwrap()
}

/// Polls `done` every 10 ms until it holds, failing after a minute (a bound,
/// not a pace: it returns as soon as `done` holds).
pub async fn until<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !done().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// One hand-off the bus saw.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    pub relay: usize,
    pub event: Event<Tick>,
}

/// What the handlers of every bus saw, shared by them all: each hand-off in
/// order, and how often two were in progress at once for one event.
#[derive(Clone, Default)]
pub struct Sightings {
    seen: Arc<Mutex<Vec<Seen>>>,
    in_flight: Arc<Mutex<HashSet<String>>>,
    overlaps: Arc<Mutex<u32>>,
}

impl Sightings {
    pub fn all(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    pub fn ids(&self) -> Vec<String> {
        self.all()
            .iter()
            .map(|s| s.event.id().to_string())
            .collect()
    }

    pub fn overlaps(&self) -> u32 {
        *self.overlaps.lock().unwrap()
    }

    /// The `n`s each aggregate was handed over in.
    pub fn by_aggregate(&self) -> HashMap<String, Vec<u32>> {
        let mut map: HashMap<String, Vec<u32>> = HashMap::new();
        for s in self.all() {
            map.entry(s.event.aggregate.clone())
                .or_default()
                .push(s.event.n);
        }
        map
    }

    /// A local bus whose one handler records into these sightings as relay
    /// `relay`.
    pub fn bus(&self, relay: usize) -> EventBus {
        EventBus::builder()
            .without_store()
            .discover(false)
            .register_handler::<Tick, _>(Recording {
                relay,
                sightings: self.clone(),
            })
            .build()
            .unwrap()
    }
}

struct Recording {
    relay: usize,
    sightings: Sightings,
}

impl Handler<Tick> for Recording {
    async fn handle(&self, event: &Event<Tick>) -> HandlerResult {
        let id = event.id().to_string();
        if !self.sightings.in_flight.lock().unwrap().insert(id.clone()) {
            *self.sightings.overlaps.lock().unwrap() += 1;
        }
        // Stay in flight across a few scheduling points, so a second
        // hand-off of the same event at the same time would be seen.
        for _ in 0..3 {
            tokio::task::yield_now().await;
        }
        self.sightings.seen.lock().unwrap().push(Seen {
            relay: self.relay,
            event: event.clone(),
        });
        self.sightings.in_flight.lock().unwrap().remove(&id);
        Ok(())
    }
}

/// Relay options for tests: quick polling and backoff.
pub fn quick() -> events_outbox::RelayOptions {
    events_outbox::RelayOptions {
        poll_interval: Duration::from_millis(50),
        retry_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_secs(1),
        ..Default::default()
    }
}

/// Writes `events` of `aggregate` in one committed transaction.
pub async fn commit(pool: &PgPool, aggregate: Option<&str>, events: Vec<Event<Tick>>) {
    let mut tx = pool.begin().await.unwrap();
    events_outbox::write(&mut tx, aggregate, events)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

/// What a test's `tracing_subscriber::fmt` subscriber wrote.
#[derive(Clone, Default)]
pub struct Lines(Arc<Mutex<Vec<u8>>>);

impl Lines {
    /// Everything written, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Lines {
    type Writer = Lines;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
