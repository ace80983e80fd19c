//! Done-when 2: SIGKILL of a relay process at random points while writers commit, and SIGKILL of PostgreSQL mid-relay.
//!
//! Sizing (CI, 2 busy cores): 30 rounds; 1,000 events committed by 4
//! concurrent writers over 40 aggregates, about 34 released per round while
//! that round's relay runs; each round's relay is killed once it has
//! handed a random number (0 to 40) of further events to the bus, and a
//! random 0-3 ms more, so some die before connecting, some between handing
//! a batch over and marking it, some idle. The whole test takes a few
//! seconds (3 s here; the bound is a minute or two on a slow machine);
//! every wait is bounded polling.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use events_core::EventBus;
use events_outbox::{Relay, RelayOptions};
use events_outbox_tests::{connect, read_ids, write_numbered, Committed, Numbered};
use events_pg_tests::PgServer;
use sqlx::PgPool;
use tokio::sync::Semaphore;

const ROUNDS: usize = 30;
const EVENTS: u32 = 1_000;
const WRITERS: u32 = 4;
const AGGREGATES_PER_WRITER: u32 = 10;
const MAX_KILL_AFTER: u64 = 40;
const WAIT: Duration = Duration::from_secs(120);

/// xorshift64*: a seeded sequence (the seed is printed, to replay a failure
/// with `RELAY_CRASH_SEED`).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn seed() -> u64 {
    std::env::var("RELAY_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        })
}

fn spawn_relay(url: &str, record: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_relay_child"))
        .arg(url)
        .arg(record)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .env("RUST_LOG", "warn")
        .spawn()
        .expect("start relay_child")
}

async fn published_ids(pool: &PgPool) -> HashSet<String> {
    sqlx::query_scalar::<_, String>(
        "SELECT id FROM events_outbox.messages WHERE published_at IS NOT NULL",
    )
    .fetch_all(pool)
    .await
    .unwrap()
    .into_iter()
    .collect()
}

fn distinct(record: &Path) -> HashSet<String> {
    read_ids(record).into_iter().collect()
}

/// Waits until `at_least` distinct events were handed to the bus.
async fn wait_for_published(record: &Path, at_least: usize, child: &mut Child) {
    let deadline = Instant::now() + WAIT;
    while distinct(record).len() < at_least {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("relay_child exited by itself ({status})");
        }
        assert!(
            Instant::now() < deadline,
            "the relay handed over fewer than {at_least} events within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_of_the_relay_at_random_points_loses_nothing_and_duplicates_only_unmarked_rows() {
    let seed = seed();
    eprintln!("relay crash test: seed {seed} (RELAY_CRASH_SEED={seed} replays the kill points)");
    let mut rng = Rng(seed);
    let server = PgServer::start();
    let db = server.database();
    let pool = connect(&db.url, 8).await.unwrap();
    events_outbox::migrate(&pool).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("published.txt");

    // The writers: each commit takes a permit; the rounds release them.
    let permits = Arc::new(Semaphore::new(0));
    let committed: Arc<Mutex<Vec<Committed>>> = Arc::default();
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let (pool, permits, committed) = (pool.clone(), permits.clone(), committed.clone());
        writers.push(tokio::spawn(async move {
            for n in 0..EVENTS / WRITERS {
                permits.acquire().await.unwrap().forget();
                let key = format!("aggregate-{writer}-{}", n % AGGREGATES_PER_WRITER);
                let done = write_numbered(&pool, writer, n, &key, Instant::now() + WAIT)
                    .await
                    .unwrap();
                committed.lock().unwrap().push(done);
            }
        }));
    }

    // For each round: the ids handed to the bus but not marked published
    // when its relay died (the only ones that may come again).
    let mut unmarked_at_kill: Vec<HashSet<String>> = Vec::new();
    let per_round = (EVENTS as usize).div_ceil(ROUNDS);
    let mut released = 0;
    for round in 0..ROUNDS {
        let mut child = spawn_relay(&db.url, &record);
        let batch = per_round.min(EVENTS as usize - released);
        permits.add_permits(batch);
        released += batch;
        let kill_after = rng.below(MAX_KILL_AFTER + 1) as usize;
        let lines_before = read_ids(&record).len();
        let target = (distinct(&record).len() + kill_after).min(released);
        wait_for_published(&record, target, &mut child).await;
        // And a random moment within the next 3 ms (mid-batch, mid-commit).
        tokio::time::sleep(Duration::from_micros(rng.below(3_000))).await;
        child.kill().unwrap();
        child.wait().unwrap();
        let seen = distinct(&record);
        let marked = published_ids(&pool).await;
        let unmarked: HashSet<String> = seen.difference(&marked).cloned().collect();
        eprintln!(
            "round {round}: killed after {} new hand-offs ({} handed over in all, {} of them not marked)",
            read_ids(&record).len() - lines_before,
            seen.len(),
            unmarked.len()
        );
        unmarked_at_kill.push(unmarked);
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let committed = committed.lock().unwrap().clone();
    assert_eq!(committed.len(), EVENTS as usize);

    // A last relay drains the rest.
    let mut child = spawn_relay(&db.url, &record);
    let deadline = Instant::now() + WAIT;
    loop {
        let pending: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM events_outbox.messages WHERE published_at IS NULL",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        if pending == 0 {
            break;
        }
        assert!(child.try_wait().unwrap().is_none(), "relay_child exited");
        assert!(
            Instant::now() < deadline,
            "{pending} rows still waiting after {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let seen = read_ids(&record);
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for id in &seen {
        *counts.entry(id.as_str()).or_default() += 1;
    }
    let committed_ids: HashSet<&str> = committed.iter().map(|c| c.id.as_str()).collect();
    for c in &committed {
        assert!(
            counts.contains_key(c.id.as_str()),
            "committed event {} was never published",
            c.id
        );
    }
    for id in counts.keys() {
        assert!(
            committed_ids.contains(id),
            "published {id}, which no writer committed"
        );
    }
    let mut duplicates = 0;
    for (id, &count) in &counts {
        let allowed = 1 + unmarked_at_kill.iter().filter(|u| u.contains(*id)).count();
        assert!(
            count <= allowed,
            "{id} was published {count} times, but only {} relay(s) died between handing it over and marking it",
            allowed - 1
        );
        duplicates += count - 1;
    }
    eprintln!(
        "{} events committed, {} hand-offs, {duplicates} duplicates (all of rows accepted but not yet marked when their relay died)",
        committed.len(),
        seen.len()
    );
}

/// A relay in this process, recording in memory.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<String>>>);

impl events_core::Handler<Numbered> for Seen {
    async fn handle(&self, event: &events_core::Event<Numbered>) -> events_core::HandlerResult {
        self.0.lock().unwrap().push(event.id().as_str().to_owned());
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_of_postgres_mid_relay_the_relay_reconnects_by_itself_and_loses_nothing() {
    let server = PgServer::start();
    let db = server.database();
    let pool = connect(&db.url, 8).await.unwrap();
    events_outbox::migrate(&pool).await.unwrap();
    let seen = Seen::default();
    let bus = EventBus::builder()
        .without_store()
        .discover(false)
        .register_handler::<Numbered, _>(seen.clone())
        .build()
        .unwrap();
    let relay = Relay::spawn(
        pool.clone(),
        bus,
        RelayOptions {
            batch: 10,
            poll_interval: Duration::from_millis(100),
            ..RelayOptions::default()
        },
    );

    const TOTAL: u32 = 300;
    let committed: Arc<Mutex<Vec<Committed>>> = Arc::default();
    let mut writers = Vec::new();
    for writer in 0..3 {
        let (pool, committed) = (pool.clone(), committed.clone());
        writers.push(tokio::spawn(async move {
            for n in 0..TOTAL / 3 {
                let key = format!("aggregate-{writer}-{}", n % 5);
                let done = write_numbered(&pool, writer, n, &key, Instant::now() + WAIT)
                    .await
                    .unwrap();
                committed.lock().unwrap().push(done);
            }
        }));
    }

    // Kill the server once the relay is well under way.
    let deadline = Instant::now() + WAIT;
    while seen.0.lock().unwrap().len() < 30 {
        assert!(Instant::now() < deadline, "the relay published nothing");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let mut server = server;
    let before = seen.0.lock().unwrap().len();
    let server = tokio::task::spawn_blocking(move || {
        server.kill();
        server.restart();
        server
    })
    .await
    .unwrap();
    eprintln!("postgres killed and restarted after {before} hand-offs");

    for writer in writers {
        writer.await.unwrap();
    }
    let committed = committed.lock().unwrap().clone();
    assert_eq!(committed.len(), TOTAL as usize);
    let deadline = Instant::now() + WAIT;
    loop {
        let got: HashSet<String> = seen.0.lock().unwrap().iter().cloned().collect();
        let missing = committed.iter().filter(|c| !got.contains(&c.id)).count();
        if missing == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{missing} committed events not published {WAIT:?} after the restart: the relay did not reconnect"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    relay.stop().await.unwrap();
    let total = seen.0.lock().unwrap().len();
    eprintln!(
        "{} events committed, {total} hand-offs ({} duplicates: rows of the round the crash interrupted)",
        committed.len(),
        total - committed.len()
    );
    drop(server);
}
