//! What the Lambda and HTTP adapters do per message, in process: an SQS
//! body (the EventBridge envelope) → decode → route on `detail-type` →
//! await one no-op handler (`Processor::process`), beside the limit: plain
//! `serde_json` decoding of the same body into derived structs (envelope,
//! detail, then the attributes' JSON text into the event struct), no routing
//! or handler. Both inside `block_on` of the same current-thread runtime.
//!
//! Writes the body to `target/consume-bench-body.json`, for the Python
//! dispatcher's timing (`scripts/bench-consume`).
//!
//! `cargo bench -p events-eventbridge --bench consume`

#![allow(missing_docs)] // criterion_group! generates an undocumented fn.
#![allow(clippy::expect_used)] // a benchmark that cannot set up stops.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
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

fn consume(c: &mut Criterion) {
    let body = body();
    let _ = std::fs::write(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/consume-bench-body.json"),
        &body,
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let bus = EventBus::builder()
        .without_store()
        .discover(false)
        .register_handler_named::<CompanyCreated, _>("noop", NoOp)
        .build()
        .expect("bus");
    let processor = Processor::new(bus);
    assert!(rt.block_on(processor.process(&body)).is_done());

    let mut group = c.benchmark_group("consume_body");
    group.bench_function("processor", |b| {
        b.iter(|| rt.block_on(processor.process(black_box(&body))))
    });
    group.bench_function("serde_baseline", |b| {
        b.iter(|| {
            rt.block_on(async {
                let envelope: PlainEnvelope =
                    serde_json::from_str(black_box(&body)).expect("envelope");
                let company: PlainCompany =
                    serde_json::from_str(&envelope.detail.attributes).expect("attributes");
                black_box((
                    envelope.detail_type,
                    envelope.detail.id,
                    envelope.detail.kind,
                    envelope.detail.occurred_on,
                    company.company_id,
                    company.company_name,
                    company.country_id,
                ))
            })
        })
    });
    group.finish();
}

criterion_group!(benches, consume);
criterion_main!(benches);
