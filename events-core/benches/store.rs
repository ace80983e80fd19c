//! Durable stores per second into the SQLite store, for 1 and for 8
//! concurrent writers (one event per `store` call), beside the raw limit of
//! appending the same bytes to a file with one fsync per group, in the same
//! run: per 8 records (the fair baseline for 8 writers that each wait for
//! their own event: at most 8 can share an fsync), per 1 (for 1 writer) and
//! per 64. `cargo bench -p events-core --bench store`.

#![allow(missing_docs)] // criterion_group! generates an undocumented fn.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

use common::CompanyCreated;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use events_core::store::{EventStore, SqliteStore};
use events_core::{wire, Event, RawEvent};

/// Records per measured round (and per fsync of the raw baseline).
const ROUND: usize = 64;

fn events(n: usize) -> Vec<RawEvent> {
    (0..n)
        .filter_map(|_| RawEvent::from_event(&Event::new(CompanyCreated::sample())).ok())
        .collect()
}

fn bench(c: &mut Criterion) {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("store-bench");
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::create_dir_all(&dir);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(_) => return,
    };
    let Ok(store) = SqliteStore::open(dir.join("events.db")) else {
        return;
    };
    let store = Arc::new(store);

    let mut g = c.benchmark_group("durable_store");
    g.throughput(Throughput::Elements(ROUND as u64));
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(8));

    let raw = |name: &str, group: usize, g: &mut criterion::BenchmarkGroup<'_, _>| {
        g.bench_function(name, |b| {
            let Ok(mut file) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join(format!("{name}.log")))
            else {
                return;
            };
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let records: Vec<String> =
                        events(ROUND).iter().map(wire::encode_detail).collect();
                    let start = Instant::now();
                    for chunk in records.chunks(group) {
                        for r in chunk {
                            let _ = file.write_all(r.as_bytes());
                            let _ = file.write_all(b"\n");
                        }
                        let _ = file.sync_data();
                    }
                    total += start.elapsed();
                }
                total
            })
        });
    };
    raw("raw_append_fsync_per_64", 64, &mut g);
    raw("raw_append_fsync_per_8", 8, &mut g);
    raw("raw_append_fsync_per_1", 1, &mut g);

    let writers =
        |name: &str, writers: usize, per_call: usize, g: &mut criterion::BenchmarkGroup<'_, _>| {
            g.bench_function(name, |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let mut batch = events(ROUND);
                        let store = store.clone();
                        let start = Instant::now();
                        rt.block_on(async move {
                            let mut tasks = Vec::new();
                            for _ in 0..writers {
                                let mine: Vec<RawEvent> = batch.drain(..ROUND / writers).collect();
                                let store = store.clone();
                                tasks.push(tokio::spawn(async move {
                                    for call in mine.chunks(per_call) {
                                        let _ = store.store(call.to_vec()).await;
                                    }
                                }));
                            }
                            for t in tasks {
                                let _ = t.await;
                            }
                        });
                        total += start.elapsed();
                    }
                    total
                })
            });
        };
    writers("sqlite_1_writer", 1, 1, &mut g);
    writers("sqlite_8_writers", 8, 1, &mut g);
    // The same 64 events, each writer storing its 8 in one call (as
    // `publish_batch` and aggregates do): one group commit can take all 64.
    writers("sqlite_8_writers_8_per_call", 8, 8, &mut g);
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
