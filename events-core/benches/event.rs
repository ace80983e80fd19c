//! `to_dict`, `from_dict`, wire encode and wire decode of the seed's
//! `CompanyCreated`, each beside a hand-written serde_json baseline doing the
//! same work, in the same run. `cargo bench -p events-core --bench event`.

#![allow(missing_docs)] // criterion_group! generates an undocumented fn.

use chrono::{DateTime, SecondsFormat, Utc};
mod common;

use common::CompanyCreated;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use events_core::{wire, DomainEvent, Event, RawEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The baseline: the same struct with serde's derives, used by hand.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompanyCreatedSerde {
    company_id: Uuid,
    company_name: String,
    country_id: Uuid,
}

#[derive(Serialize)]
struct DetailOut<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    occurred_on: String,
    attributes: String,
}

#[derive(Deserialize)]
struct DetailIn {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    occurred_on: String,
    attributes: String,
}

fn baseline_encode(id: &str, at: DateTime<Utc>, event: &CompanyCreatedSerde) -> String {
    let detail = DetailOut {
        id,
        kind: "testclean.api.1.event.company.created",
        occurred_on: at.to_rfc3339_opts(SecondsFormat::Micros, false),
        attributes: serde_json::to_string(event).unwrap_or_default(),
    };
    serde_json::to_string(&detail).unwrap_or_default()
}

fn baseline_decode(detail: &str) -> Option<(String, String, DateTime<Utc>, CompanyCreatedSerde)> {
    let d: DetailIn = serde_json::from_str(detail).ok()?;
    let at = DateTime::parse_from_rfc3339(&d.occurred_on)
        .ok()?
        .with_timezone(&Utc);
    let attrs = serde_json::from_str(&d.attributes).ok()?;
    Some((d.id, d.kind, at, attrs))
}

fn bench(c: &mut Criterion) {
    let payload = CompanyCreated::sample();
    let serde_payload = CompanyCreatedSerde {
        company_id: payload.company_id,
        company_name: payload.company_name.clone(),
        country_id: payload.country_id,
    };
    let event = Event::new(payload.clone());
    let dict = payload.to_dict().unwrap_or_default();
    let dict_value = serde_json::Value::Object(dict.clone());
    let detail =
        wire::encode_detail(&RawEvent::from_event(&event).unwrap_or_else(|_| unreachable!()));

    let mut g = c.benchmark_group("to_dict");
    g.bench_function("derive", |b| b.iter(|| black_box(&payload).to_dict()));
    g.bench_function("serde_baseline", |b| {
        b.iter(|| match serde_json::to_value(black_box(&serde_payload)) {
            Ok(serde_json::Value::Object(map)) => Some(map),
            _ => None,
        })
    });
    g.finish();

    let mut g = c.benchmark_group("from_dict");
    g.bench_function("derive", |b| {
        b.iter(|| CompanyCreated::from_dict(black_box(&dict)))
    });
    g.bench_function("serde_baseline", |b| {
        b.iter(|| CompanyCreatedSerde::deserialize(black_box(&dict_value)))
    });
    g.finish();

    let mut g = c.benchmark_group("wire_encode");
    g.bench_function("derive", |b| {
        b.iter(|| RawEvent::from_event(black_box(&event)).map(|raw| wire::encode_detail(&raw)))
    });
    g.bench_function("serde_baseline", |b| {
        b.iter(|| {
            baseline_encode(
                event.id().as_str(),
                event.occurred_on(),
                black_box(&serde_payload),
            )
        })
    });
    g.finish();

    let mut g = c.benchmark_group("wire_decode");
    g.bench_function("derive", |b| {
        b.iter(|| wire::decode_event::<CompanyCreated>(black_box(&detail)))
    });
    g.bench_function("derive_via_raw_event", |b| {
        b.iter(|| {
            wire::decode_detail(black_box(&detail)).and_then(|raw| raw.decode::<CompanyCreated>())
        })
    });
    g.bench_function("serde_baseline", |b| {
        b.iter(|| baseline_decode(black_box(&detail)))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default();
    targets = bench
}
criterion_main!(benches);
