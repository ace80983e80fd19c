//! What the Lambda and HTTP adapters do per message, in process: an SQS
//! body (the EventBridge envelope) → decode → route on `detail-type` →
//! await one no-op handler (`Processor::process`), beside the limit: plain
//! `serde_json` decoding of the same body into derived structs (envelope,
//! detail, then the attributes' JSON text into the event struct), no routing
//! or handler. Both inside `block_on` of the same current-thread runtime.
//!
//! After criterion's group it prints the same comparison measured
//! interleaved (chunks of 500 bodies, each side in turn, the fastest chunk
//! of each): on a loaded machine criterion's sequential runs of the two see
//! different loads, interleaved chunks the same. `-- nomatch` prints only
//! that.
//!
//! Writes the body to `target/consume-bench-body.json`, for the Python
//! dispatcher's timing (`scripts/bench-consume`).
//!
//! `cargo bench -p events-eventbridge --bench consume`

#![allow(missing_docs)] // criterion_group! generates an undocumented fn.
#![allow(clippy::expect_used)] // a benchmark that cannot set up stops.

use std::hint::black_box;
use std::time::Instant;

use criterion::{criterion_group, Criterion};
use events_core::{wire, DomainEvent, Event, EventBus, Handler, HandlerResult, RawEvent};
use events_eventbridge::Processor;
use serde::Deserialize;
use uuid::Uuid;

#[derive(DomainEvent, Debug, Clone)]
#[event(
    company = "testclean",
    service = "api",
    version = 1,
    resource = "company",
    action = "created"
)]
struct CompanyCreated {
    company_id: Uuid,
    company_name: String,
    country_id: Uuid,
}

struct NoOp;

impl Handler<CompanyCreated> for NoOp {
    async fn handle(&self, event: &Event<CompanyCreated>) -> HandlerResult {
        black_box(event);
        Ok(())
    }
}

// The baseline: the same body into derived structs, nothing else.
#[derive(Deserialize)]
struct PlainEnvelope {
    #[serde(rename = "detail-type")]
    detail_type: String,
    detail: PlainDetail,
}

#[derive(Deserialize)]
struct PlainDetail {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    occurred_on: String,
    attributes: String,
}

#[derive(Deserialize)]
struct PlainCompany {
    company_id: Uuid,
    company_name: String,
    country_id: Uuid,
}

fn body() -> String {
    let event = Event::new(CompanyCreated {
        company_id: Uuid::new_v4(),
        company_name: "Test Company".to_owned(),
        country_id: Uuid::new_v4(),
    });
    let raw = RawEvent::from_event(&event).expect("encode");
    format!(
        r#"{{"version":"0","id":"{}","detail-type":"{}","source":"testclean.api","account":"123456789012","time":"2026-11-27T10:15:30Z","region":"us-east-1","resources":[],"detail":{}}}"#,
        Uuid::new_v4(),
        raw.name,
        wire::encode_detail(&raw)
    )
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
}

fn processor() -> Processor {
    let bus = EventBus::builder()
        .without_store()
        .discover(false)
        .register_handler_named::<CompanyCreated, _>("noop", NoOp)
        .build()
        .expect("bus");
    Processor::new(bus)
}

/// The baseline's work: envelope and detail, then the attributes' JSON text
/// into the event struct.
fn plain_decode(body: &str) -> impl Sized {
    let envelope: PlainEnvelope = serde_json::from_str(body).expect("envelope");
    let company: PlainCompany =
        serde_json::from_str(&envelope.detail.attributes).expect("attributes");
    (
        envelope.detail_type,
        envelope.detail.id,
        envelope.detail.kind,
        envelope.detail.occurred_on,
        company.company_id,
        company.company_name,
        company.country_id,
    )
}

fn consume(c: &mut Criterion) {
    let body = body();
    let _ = std::fs::write(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/consume-bench-body.json"),
        &body,
    );
    let rt = runtime();
    let processor = processor();
    assert!(rt.block_on(processor.process(&body)).is_done());

    let mut group = c.benchmark_group("consume_body");
    group.bench_function("processor", |b| {
        b.iter(|| rt.block_on(processor.process(black_box(&body))))
    });
    group.bench_function("serde_baseline", |b| {
        b.iter(|| rt.block_on(async { black_box(plain_decode(black_box(&body))) }))
    });
    group.finish();
}

/// Best time per call over `rounds` interleaved chunks of each routine, in
/// ns: on a loaded machine criterion's sequential runs see different loads,
/// interleaved chunks the same.
fn interleaved<const N: usize>(rounds: usize, routines: &mut [&mut dyn FnMut(); N]) -> [f64; N] {
    const CHUNK: u32 = 500;
    let mut best = [f64::MAX; N];
    for round in 0..rounds {
        for i in 0..N {
            let k = (round + i) % N;
            let start = Instant::now();
            for _ in 0..CHUNK {
                routines[k]();
            }
            best[k] = best[k].min(start.elapsed().as_nanos() as f64 / f64::from(CHUNK));
        }
    }
    best
}

fn interleaved_ratios() {
    let body = body();
    let rt = runtime();
    let processor = processor();
    let [ours, plain] = interleaved(
        300,
        &mut [
            &mut || {
                black_box(rt.block_on(processor.process(black_box(&body))));
            },
            &mut || {
                black_box(rt.block_on(async { plain_decode(black_box(&body)) }));
            },
        ],
    );
    println!("interleaved, best of 300 chunks of 500 bodies:");
    println!(
        "  consume_body  processor {ours:6.0} ns  serde_baseline {plain:6.0} ns  ratio {:.2}x",
        ours / plain
    );
}

criterion_group!(benches, consume);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    // `cargo test --benches` runs each bench once as a smoke test: no timing.
    if std::env::args().any(|a| a == "--test") {
        return;
    }
    interleaved_ratios();
}
