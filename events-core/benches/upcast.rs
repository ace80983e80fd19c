//! Receiving a v1 body into a handler of v3 (decode v1, upcast v1 -> v2 ->
//! v3 through the user's `From` impls, dispatch) beside receiving a v3 body
//! into the same handler directly, and the user's two conversions alone,
//! in one run. Goal: upcast <= 1.5 x direct + the conversions.
//! `cargo bench -p events-core --bench upcast`.
//!
//! After criterion's groups it prints the same comparison measured
//! interleaved (chunks of 2,000 receives, each path in turn, the fastest
//! chunk of each), which a loaded machine skews less.

#![allow(missing_docs)] // criterion_group! generates an undocumented fn.
#![allow(clippy::unwrap_used)] // A bench, like a test: a failure stops it.

use std::time::Instant;

use criterion::{black_box, criterion_group, Criterion};
use events_core::{DomainEvent, Event, EventBus, Handler, HandlerResult, RawEvent};
use uuid::Uuid;

#[derive(DomainEvent, Debug, Clone)]
#[event(
    company = "testclean",
    service = "api",
    version = 1,
    resource = "company",
    action = "created"
)]
pub struct CompanyCreatedV1 {
    company_id: Uuid,
    company_name: String,
    country_id: Uuid,
}

#[derive(DomainEvent, Debug, Clone)]
#[event(
    company = "testclean",
    service = "api",
    version = 2,
    resource = "company",
    action = "created",
    upcast_from = CompanyCreatedV1
)]
pub struct CompanyCreatedV2 {
    company_id: Uuid,
    legal_name: String,
    country_id: Uuid,
    plan: String,
}

#[derive(DomainEvent, Debug, Clone)]
#[event(
    company = "testclean",
    service = "api",
    version = 3,
    resource = "company",
    action = "created",
    upcast_from = CompanyCreatedV2
)]
pub struct CompanyCreatedV3 {
    company_id: Uuid,
    legal_name: String,
    country_id: Uuid,
    plan: String,
    seats: u32,
}

impl From<CompanyCreatedV1> for CompanyCreatedV2 {
    fn from(v1: CompanyCreatedV1) -> Self {
        CompanyCreatedV2 {
            company_id: v1.company_id,
            legal_name: v1.company_name,
            country_id: v1.country_id,
            plan: "free".to_owned(),
        }
    }
}

impl From<CompanyCreatedV2> for CompanyCreatedV3 {
    fn from(v2: CompanyCreatedV2) -> Self {
        CompanyCreatedV3 {
            seats: if v2.plan == "free" { 1 } else { 5 },
            company_id: v2.company_id,
            legal_name: v2.legal_name,
            country_id: v2.country_id,
            plan: v2.plan,
        }
    }
}

struct OnV3;

impl Handler<CompanyCreatedV3> for OnV3 {
    async fn handle(&self, event: &Event<CompanyCreatedV3>) -> HandlerResult {
        black_box(&event.legal_name);
        Ok(())
    }
}

fn v1() -> CompanyCreatedV1 {
    CompanyCreatedV1 {
        company_id: Uuid::from_u128(1),
        company_name: "Acme Logistics Iberia".to_owned(),
        country_id: Uuid::from_u128(2),
    }
}

fn body<E: DomainEvent>(event: E) -> String {
    let raw = RawEvent::from_event(&Event::new(event)).unwrap();
    let detail: serde_json::Value =
        serde_json::from_str(&events_core::wire::encode_detail(&raw)).unwrap();
    serde_json::json!({
        "version": "0", "id": "e", "detail-type": raw.name, "source": "testclean.api",
        "account": "1", "time": "2026-11-27T10:00:00Z", "region": "us-east-1", "resources": [],
        "detail": detail,
    })
    .to_string()
}

struct Setup {
    bus: EventBus,
    runtime: tokio::runtime::Runtime,
    v1_body: String,
    v3_body: String,
}

fn setup() -> Setup {
    let bus = EventBus::builder()
        .discover(false)
        .without_store()
        .register_handler(OnV3)
        .build()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    Setup {
        bus,
        runtime,
        v1_body: body(v1()),
        v3_body: body(CompanyCreatedV3::from(CompanyCreatedV2::from(v1()))),
    }
}

fn receive(s: &Setup, body: &str) {
    let outcomes = s
        .runtime
        .block_on(s.bus.receive(body).unwrap().dispatch())
        .unwrap();
    assert_eq!(outcomes.len(), 1);
}

fn convert() -> CompanyCreatedV3 {
    CompanyCreatedV3::from(CompanyCreatedV2::from(black_box(v1())))
}

fn bench(c: &mut Criterion) {
    let s = setup();
    let mut group = c.benchmark_group("receive into a v3 handler");
    group.bench_function("v1 body, upcast", |b| b.iter(|| receive(&s, &s.v1_body)));
    group.bench_function("v3 body, direct", |b| b.iter(|| receive(&s, &s.v3_body)));
    group.bench_function("the conversions alone", |b| b.iter(|| black_box(convert())));
    group.finish();
}

criterion_group!(benches, bench);

/// The fastest of `rounds` chunks of `n` calls of each path, in turn.
fn interleaved() {
    let s = setup();
    let (n, rounds) = (2_000u32, 15);
    let mut best = [f64::MAX; 3];
    for _ in 0..rounds {
        let paths: [&dyn Fn(); 3] = [
            &|| receive(&s, &s.v1_body),
            &|| receive(&s, &s.v3_body),
            &|| {
                black_box(convert());
            },
        ];
        for (i, path) in paths.iter().enumerate() {
            let start = Instant::now();
            for _ in 0..n {
                path();
            }
            best[i] = best[i].min(start.elapsed().as_secs_f64() * 1e9 / f64::from(n));
        }
    }
    let [upcast, direct, conversions] = best;
    println!(
        "interleaved: v1 upcast {upcast:.0} ns, v3 direct {direct:.0} ns, conversions {conversions:.0} ns; \
         upcast / direct = {:.2}x, upcast / (direct + conversions) = {:.2}x (goal <= 1.5x)",
        upcast / direct,
        upcast / (direct + conversions)
    );
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    interleaved();
}
