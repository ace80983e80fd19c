//! The outbox benchmark (issue 17, done-when 5), one run on one PostgreSQL
//! server (the harness's, PostgreSQL's default durability: every commit
//! waits for its WAL flush):
//!
//! 1. **commit cost**: transactions "insert a company" alone beside "insert
//!    a company + its event in the outbox" (the example's
//!    `PostgresCompanyRepository::insert` and `save`, which sends both in
//!    one statement with `write_recorded_with`), one at a time on one
//!    connection, taking turns commit by commit; the ratio of the medians
//!    of their times per commit (goal <= 1.2x). Two more sides in the same
//!    rotation: the company then its event in a statement of its own
//!    (`write_recorded`), and "insert a company + `SELECT 1`", the floor of
//!    any second statement (one more round trip doing nothing).
//! 2. **relay throughput to the in-memory bus**: N committed events (one
//!    aggregate each), then one relay (default options unless set, below)
//!    to a local-mode bus with one counting handler, timed from
//!    its start until every row is marked published (goal >= 20,000
//!    events/s).
//! 3. **relay throughput to moto** beside a raw SDK loop of PutEvents calls
//!    of 10 entries, 8 in flight (the publisher's default concurrency), on
//!    the same events; buses without a rule (a rule makes moto deliver to
//!    SQS at 10-20 ms per event, which would measure moto); rounds rotate
//!    the order; the ratio of the medians (goal >= 90 %).
//! 4. **commit-to-publish latency** with LISTEN/NOTIFY: an idle relay, one
//!    event committed at a time, from the moment `commit()` returned to the
//!    handler's run (the next event after the previous one arrived); p50
//!    and p99 (goal p50 <= 5 ms, p99 <= 20 ms).
//!
//! `scripts/bench-outbox`, or `cargo bench -p events-outbox-tests --bench
//! outbox`; sizes from `OUTBOX_BENCH_COMMITS` (1,000 per side),
//! `OUTBOX_BENCH_EVENTS` (20,000), `OUTBOX_BENCH_MOTO_EVENTS` (5,000: a
//! relay's start, its first connections and its last poll, about 30 ms,
//! weigh 8 % on 1,000 events), `OUTBOX_BENCH_ROUNDS` (5), `OUTBOX_BENCH_LATENCY` (500); the relay's
//! options from `OUTBOX_BENCH_WORKERS` and `OUTBOX_BENCH_BATCH` (default:
//! `RelayOptions::default()`).

#![allow(missing_docs)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use events_aws_tests::moto::Moto;
use events_core::{wire, Event, EventBus, Handler, HandlerResult, Mode, RawEvent};
use events_eventbridge::EventBridgePublisher;
use events_examples::domain::aggregates::CompanyAggregate;
use events_examples::domain::events::CompanyCreated;
use events_examples::infrastructure::postgres::PostgresCompanyRepository;
use events_outbox::{Relay, RelayOptions};
use events_pg_tests::PgServer;
use futures_util::stream::{self, StreamExt};
use sqlx::PgPool;
use tokio::sync::mpsc;
use uuid::Uuid;

const CONCURRENCY: usize = 8;

fn size(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The relay's options: the defaults, or `OUTBOX_BENCH_WORKERS` and
/// `OUTBOX_BENCH_BATCH`.
fn relay_options() -> RelayOptions {
    let defaults = RelayOptions::default();
    RelayOptions {
        workers: size("OUTBOX_BENCH_WORKERS", defaults.workers),
        batch: size("OUTBOX_BENCH_BATCH", defaults.batch),
        ..defaults
    }
}

fn company(i: usize) -> Event<CompanyCreated> {
    Event::new(CompanyCreated {
        company_id: Uuid::new_v4(),
        company_name: format!("company {i}"),
        country_id: Uuid::new_v4(),
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

async fn fresh(server: &PgServer) -> PostgresCompanyRepository {
    let db = server.database();
    let repository = PostgresCompanyRepository::connect(&db.url).await.unwrap();
    repository.migrate().await.unwrap();
    repository
}

/// Commits `events`, 100 per transaction, each under its company's key.
async fn preload(pool: &PgPool, events: &[Event<CompanyCreated>]) {
    for chunk in events.chunks(100) {
        let mut tx = pool.begin().await.unwrap();
        for event in chunk {
            let key = event.company_id.to_string();
            events_outbox::write(&mut tx, Some(&key), [event.clone()])
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
    }
}

/// Waits until no row waits, polling every 5 ms with the cheapest question
/// (is there a first entry in `messages_pending`?): `stats` counts every
/// row, which on a 2-core machine polled this often took CPU from the
/// relay it measured.
async fn wait_empty(pool: &PgPool) {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let waiting: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM events_outbox.messages
                            WHERE published_at IS NULL AND dead_at IS NULL
                              AND available_at IS NOT NULL)",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        if !waiting {
            return;
        }
        assert!(Instant::now() < deadline, "the relay did not finish");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

struct Count(Arc<AtomicUsize>);

impl Handler<CompanyCreated> for Count {
    async fn handle(&self, _: &Event<CompanyCreated>) -> HandlerResult {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

struct Arrivals(mpsc::UnboundedSender<(String, Instant)>);

impl Handler<CompanyCreated> for Arrivals {
    async fn handle(&self, event: &Event<CompanyCreated>) -> HandlerResult {
        let _ = self
            .0
            .send((event.id().as_str().to_owned(), Instant::now()));
        Ok(())
    }
}

fn local_bus<H: Handler<CompanyCreated>>(handler: H) -> EventBus {
    EventBus::builder()
        .without_store()
        .discover(false)
        .register_handler::<CompanyCreated, _>(handler)
        .build()
        .unwrap()
}

/// Part 1, time per commit of a company alone, of a company and an empty
/// statement, of a company and its event in one statement (the example's
/// `save`), and of a company and its event in two: the four sides take turns
/// commit by commit (`n` each), and each side's median time per commit is
/// kept (a shared disk's fsync times wander over seconds: taking turns
/// gives the sides the same disk, and medians resist the outliers).
async fn commit_cost(server: &PgServer, n: usize) -> (f64, f64, f64, f64) {
    let repository = fresh(server).await;
    let mut sides: [Vec<f64>; 4] = Default::default();
    for turn in 0..4 * n {
        let side = turn % 4;
        let mut company = CompanyAggregate::create("Bench Company", Uuid::new_v4());
        let start = Instant::now();
        match side {
            0 => {
                let mut tx = repository.pool().begin().await.unwrap();
                PostgresCompanyRepository::insert(&mut tx, &company)
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
            }
            1 => {
                let mut tx = repository.pool().begin().await.unwrap();
                PostgresCompanyRepository::insert(&mut tx, &company)
                    .await
                    .unwrap();
                sqlx::query("SELECT 1").execute(&mut *tx).await.unwrap();
                tx.commit().await.unwrap();
            }
            2 => {
                repository.save(&mut company).await.unwrap();
            }
            _ => {
                let mut tx = repository.pool().begin().await.unwrap();
                PostgresCompanyRepository::insert(&mut tx, &company)
                    .await
                    .unwrap();
                let key = company.id.to_string();
                events_outbox::write_recorded(&mut tx, &key, company.events_mut())
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
            }
        }
        sides[side].push(start.elapsed().as_secs_f64() * 1e6);
    }
    let [alone, empty, with_event, separate] = sides;
    (
        median(alone),
        median(empty),
        median(with_event),
        median(separate),
    )
}

/// 2. Events/s of one relay to a local bus.
async fn relay_local(server: &PgServer, n: usize) -> f64 {
    let repository = fresh(server).await;
    let events: Vec<_> = (0..n).map(company).collect();
    preload(repository.pool(), &events).await;
    let count = Arc::new(AtomicUsize::new(0));
    let bus = local_bus(Count(count.clone()));
    let start = Instant::now();
    let relay = Relay::spawn(repository.pool().clone(), bus, relay_options());
    // Every event handled (no query while the relay works), then every row
    // marked (the last round's commit).
    let deadline = Instant::now() + Duration::from_secs(600);
    while count.load(Ordering::Relaxed) < n {
        assert!(Instant::now() < deadline, "the relay did not finish");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    wait_empty(repository.pool()).await;
    let took = start.elapsed();
    relay.stop().await.unwrap();
    assert_eq!(count.load(Ordering::Relaxed), n);
    n as f64 / took.as_secs_f64()
}

async fn eventbridge_bus(moto: &Moto, bus_name: &str) -> EventBus {
    let publisher = EventBridgePublisher::builder()
        .bus(bus_name)
        .client(moto.eventbridge().await)
        .concurrency(CONCURRENCY)
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

/// 3a. Events/s of one relay to moto.
async fn relay_moto(server: &PgServer, moto: &Moto, bus_name: &str, n: usize) -> f64 {
    let repository = fresh(server).await;
    let events: Vec<_> = (0..n).map(company).collect();
    preload(repository.pool(), &events).await;
    let bus = eventbridge_bus(moto, bus_name).await;
    let start = Instant::now();
    let relay = Relay::spawn(repository.pool().clone(), bus, relay_options());
    wait_empty(repository.pool()).await;
    let took = start.elapsed();
    relay.stop().await.unwrap();
    let dead = events_outbox::stats(repository.pool())
        .await
        .unwrap()
        .dead_letters;
    assert_eq!(dead, 0, "moto refused events");
    n as f64 / took.as_secs_f64()
}

/// 3b. Events/s of a raw SDK loop: PutEvents of 10, 8 in flight.
async fn raw_moto(moto: &Moto, bus_name: &str, n: usize) -> f64 {
    let client = moto.eventbridge().await;
    let entries: Vec<PutEventsRequestEntry> = (0..n)
        .map(|i| {
            let raw = RawEvent::from_event(&company(i)).unwrap();
            PutEventsRequestEntry::builder()
                .event_bus_name(bus_name)
                .source("testclean.api")
                .detail_type(raw.name.clone())
                .detail(wire::encode_detail(&raw))
                .build()
        })
        .collect();
    let start = Instant::now();
    let calls = entries.chunks(10).map(|chunk| {
        let client = client.clone();
        let chunk = chunk.to_vec();
        async move {
            let out = client
                .put_events()
                .set_entries(Some(chunk))
                .send()
                .await
                .unwrap();
            assert_eq!(out.failed_entry_count(), 0);
        }
    });
    stream::iter(calls)
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<()>>()
        .await;
    n as f64 / start.elapsed().as_secs_f64()
}

/// 4. Commit-to-publish latencies, sorted.
async fn latency(server: &PgServer, n: usize) -> Vec<Duration> {
    let repository = fresh(server).await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let bus = local_bus(Arrivals(tx));
    let relay = Relay::spawn(repository.pool().clone(), bus, relay_options());
    // Let the relay settle (its LISTEN connection up, a first round done).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let event = company(i);
        let id = event.id().as_str().to_owned();
        let key = event.company_id.to_string();
        let mut db = repository.pool().begin().await.unwrap();
        events_outbox::write(&mut db, Some(&key), [event])
            .await
            .unwrap();
        db.commit().await.unwrap();
        let committed = Instant::now();
        let (got, at) = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("published within 30 s")
            .unwrap();
        assert_eq!(got, id);
        samples.push(at.saturating_duration_since(committed));
    }
    relay.stop().await.unwrap();
    samples.sort();
    samples
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let commits = size("OUTBOX_BENCH_COMMITS", 1_000);
    let events = size("OUTBOX_BENCH_EVENTS", 20_000);
    let moto_events = size("OUTBOX_BENCH_MOTO_EVENTS", 5_000);
    let rounds = size("OUTBOX_BENCH_ROUNDS", 5).max(1);
    let samples = size("OUTBOX_BENCH_LATENCY", 500).max(1);
    let server = PgServer::start();
    let version = server.query("postgres", "SHOW server_version");
    let options = relay_options();
    println!(
        "PostgreSQL {version} (harness server, default durability), one run; \
         one relay: batch {}, {} worker(s)",
        options.batch, options.workers
    );

    let (alone, empty, with_event, separate) = commit_cost(&server, commits).await;
    println!(
        "1. commit: company alone {alone:.0} us, company + event in one statement \
         (write_recorded_with) {with_event:.0} us per commit ({commits} each): {:.2}x the time \
         (goal <= 1.2x); company, then the event in a statement of its own (write_recorded): \
         {separate:.0} us, {:.2}x; the floor of any second statement, company + SELECT 1: \
         {empty:.0} us, {:.2}x",
        with_event / alone,
        separate / alone,
        empty / alone
    );

    let rate = relay_local(&server, events).await;
    println!(
        "2. relay -> in-memory bus: {rate:.0} events/s ({events} events, one relay) (goal >= 20000)"
    );

    let moto = Moto::start();
    let eb = moto.eventbridge().await;
    let (mut relay_rates, mut raw_rates) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let bus_name = format!("outbox-bench-{round}");
        eb.create_event_bus().name(&bus_name).send().await.unwrap();
        let (relay, raw) = if round % 2 == 0 {
            let r = relay_moto(&server, &moto, &bus_name, moto_events).await;
            (r, raw_moto(&moto, &bus_name, moto_events).await)
        } else {
            let raw = raw_moto(&moto, &bus_name, moto_events).await;
            (
                relay_moto(&server, &moto, &bus_name, moto_events).await,
                raw,
            )
        };
        println!("   round {round}: relay {relay:.0} events/s, raw PutEvents {raw:.0} events/s");
        relay_rates.push(relay);
        raw_rates.push(raw);
    }
    let (relay, raw) = (median(relay_rates), median(raw_rates));
    println!(
        "3. relay -> moto {relay:.0} events/s, raw PutEvents loop {raw:.0} events/s \
         (medians of {rounds}, {moto_events} events): {:.0} % (goal >= 90 %)",
        100.0 * relay / raw
    );

    let lat = latency(&server, samples).await;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "4. commit -> publish (LISTEN/NOTIFY): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms \
         ({samples} events) (goal p50 <= 5 ms, p99 <= 20 ms)",
        ms(percentile(&lat, 50.0)),
        ms(percentile(&lat, 99.0)),
        ms(lat[lat.len() - 1])
    );
}
