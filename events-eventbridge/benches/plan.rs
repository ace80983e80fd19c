//! Batch planning on the publish path, for 1,000 events: encoding each as a
//! PutEvents entry, sizing it as AWS counts, and planning calls of at most 10
//! entries and 256 KiB (`batch::plan`), beside a baseline in the same run
//! that encodes the same entries and cuts them by count only (`chunks(10)`,
//! what a publisher blind to the size limit does).
//! `cargo bench -p events-eventbridge --bench plan`.

#![allow(missing_docs)] // criterion_group! generates an undocumented fn.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use events_core::{wire, DomainEvent, Event, RawEvent};
use events_eventbridge::batch::{plan, DEFAULT_MAX_REQUEST_BYTES, MAX_ENTRIES};

#[derive(DomainEvent, Debug, Clone)]
#[event(
    company = "testclean",
    service = "api",
    version = 1,
    resource = "company",
    action = "created"
)]
struct CompanyCreated {
    company_name: String,
}

fn events() -> Vec<RawEvent> {
    (0..1000)
        .map(|i| {
            // Mostly small events, some of 20-60 KB, so size splits happen.
            let len = if i % 50 == 0 {
                20_000 + (i * 37) % 40_000
            } else {
                40 + i % 200
            };
            let event = Event::new(CompanyCreated {
                company_name: "x".repeat(len),
            });
            RawEvent::from_event(&event).unwrap_or_else(|e| panic!("{e}"))
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let events = events();
    let mut group = c.benchmark_group("plan_1000");
    group.bench_function("size_aware", |b| {
        b.iter(|| {
            let entries: Vec<wire::Entry> = events
                .iter()
                .map(|e| wire::entry(e, &wire::source_of(e, None)))
                .collect();
            let sizes: Vec<usize> = entries.iter().map(wire::Entry::size).collect();
            black_box((plan(&sizes, DEFAULT_MAX_REQUEST_BYTES), entries))
        })
    });
    group.bench_function("count_only_baseline", |b| {
        b.iter(|| {
            let entries: Vec<wire::Entry> = events
                .iter()
                .map(|e| wire::entry(e, &wire::source_of(e, None)))
                .collect();
            let calls: Vec<Vec<usize>> = (0..entries.len())
                .collect::<Vec<_>>()
                .chunks(MAX_ENTRIES)
                .map(<[usize]>::to_vec)
                .collect();
            black_box((calls, entries))
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
