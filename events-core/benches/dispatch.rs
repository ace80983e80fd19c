//! Publish → dispatch of `CompanyCreated` to 1 and to 3 handlers in local
//! mode with the store disabled, beside a hand-written minimal bus (a
//! `HashMap` from event name to boxed async handlers, looked up and awaited in
//! turn) in the same run. `cargo bench -p events-core --bench dispatch`.
//!
//! After criterion's groups it prints the same comparison measured
//! interleaved (chunks of 2,000 publishes, ours and the minimal bus in turn,
//! the fastest chunk of each): on a loaded machine criterion's sequential
//! runs of the two see different loads, the interleaved chunks the same.

#![allow(missing_docs)] // criterion_group! generates an undocumented fn.

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

mod common;

use common::CompanyCreated;
use criterion::{black_box, criterion_group, Criterion};
use events_core::{handler, DomainEvent, Event, EventBus};
use uuid::Uuid;

/// The same event under another name, with three handlers.
#[derive(DomainEvent, Debug, Clone)]
#[event(
    company = "testclean",
    service = "api",
    version = 1,
    resource = "company",
    action = "registered"
)]
pub struct CompanyRegistered {
    company_id: Uuid,
    company_name: String,
    country_id: Uuid,
}

#[handler]
async fn on_created(event: &Event<CompanyCreated>) {
    black_box(&event.company_name);
}

#[handler]
async fn on_registered_1(event: &Event<CompanyRegistered>) {
    black_box(&event.company_name);
}

#[handler]
async fn on_registered_2(event: &Event<CompanyRegistered>) {
    black_box(&event.company_name);
}

#[handler]
async fn on_registered_3(event: &Event<CompanyRegistered>) {
    black_box(&event.company_name);
}

type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send>>;
type MinimalHandler = Box<dyn Fn(Arc<dyn Any + Send + Sync>) -> BoxFuture + Send + Sync>;

/// The baseline: the least a bus can do.
#[derive(Default)]
struct MinimalBus {
    handlers: HashMap<&'static str, Vec<MinimalHandler>>,
}

impl MinimalBus {
    fn register<E: Send + Sync + 'static>(&mut self, name: &'static str, f: fn(&E)) {
        self.handlers
            .entry(name)
            .or_default()
            .push(Box::new(move |event| {
                Box::pin(async move {
                    if let Some(e) = event.downcast_ref::<E>() {
                        f(e);
                    }
                })
            }));
    }

    async fn publish(&self, name: &'static str, event: Arc<dyn Any + Send + Sync>) {
        if let Some(handlers) = self.handlers.get(name) {
            for h in handlers {
                h(event.clone()).await;
            }
        }
    }
}

/// Both buses, their runtime and the two events.
struct Fixture {
    rt: tokio::runtime::Runtime,
    bus: EventBus,
    minimal: MinimalBus,
    created: Event<CompanyCreated>,
    registered: Event<CompanyRegistered>,
}

fn fixture() -> Fixture {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap_or_else(|_| unreachable!());
    let bus = EventBus::builder()
        .without_store()
        .build()
        .unwrap_or_else(|_| unreachable!());
    let mut minimal = MinimalBus::default();
    minimal.register::<Event<CompanyCreated>>(CompanyCreated::EVENT_NAME, |e| {
        black_box(&e.company_name);
    });
    for _ in 0..3 {
        minimal.register::<Event<CompanyRegistered>>(CompanyRegistered::EVENT_NAME, |e| {
            black_box(&e.company_name);
        });
    }
    let created = Event::new(CompanyCreated::sample());
    let registered = Event::new(CompanyRegistered {
        company_id: Uuid::new_v4(),
        company_name: "Test Company".into(),
        country_id: Uuid::new_v4(),
    });
    Fixture {
        rt,
        bus,
        minimal,
        created,
        registered,
    }
}

fn bench(c: &mut Criterion) {
    let Fixture {
        rt,
        bus,
        minimal,
        created,
        registered,
    } = fixture();

    let mut g = c.benchmark_group("dispatch_1_handler");
    g.bench_function("events_bus", |b| {
        b.iter(|| rt.block_on(bus.publish(created.clone())))
    });
    g.bench_function("minimal_bus", |b| {
        b.iter(|| {
            rt.block_on(minimal.publish(CompanyCreated::EVENT_NAME, Arc::new(created.clone())))
        })
    });
    g.finish();

    let mut g = c.benchmark_group("dispatch_3_handlers");
    g.bench_function("events_bus", |b| {
        b.iter(|| rt.block_on(bus.publish(registered.clone())))
    });
    g.bench_function("minimal_bus", |b| {
        b.iter(|| {
            rt.block_on(
                minimal.publish(CompanyRegistered::EVENT_NAME, Arc::new(registered.clone())),
            )
        })
    });
    g.finish();
}

/// Best time per publish over `rounds` interleaved chunks of `ours` and
/// `theirs`: (ours, theirs) in ns.
fn interleaved(rounds: usize, mut ours: impl FnMut(), mut theirs: impl FnMut()) -> (f64, f64) {
    const CHUNK: u32 = 2_000;
    let mut best = [f64::MAX; 2];
    for round in 0..rounds {
        for k in [round % 2, (round + 1) % 2] {
            let start = Instant::now();
            for _ in 0..CHUNK {
                if k == 0 {
                    ours();
                } else {
                    theirs();
                }
            }
            best[k] = best[k].min(start.elapsed().as_nanos() as f64 / f64::from(CHUNK));
        }
    }
    (best[0], best[1])
}

fn interleaved_ratios() {
    let Fixture {
        rt,
        bus,
        minimal,
        created,
        registered,
    } = fixture();
    println!("interleaved, best of 300 chunks of 2,000 publishes:");
    let (ours, theirs) = interleaved(
        300,
        || {
            black_box(rt.block_on(bus.publish(created.clone())).ok());
        },
        || rt.block_on(minimal.publish(CompanyCreated::EVENT_NAME, Arc::new(created.clone()))),
    );
    println!(
        "  dispatch_1_handler   events_bus {ours:6.0} ns  minimal_bus {theirs:6.0} ns  ratio {:.2}x",
        ours / theirs
    );
    let (ours, theirs) = interleaved(
        300,
        || {
            black_box(rt.block_on(bus.publish(registered.clone())).ok());
        },
        || {
            rt.block_on(
                minimal.publish(CompanyRegistered::EVENT_NAME, Arc::new(registered.clone())),
            )
        },
    );
    println!(
        "  dispatch_3_handlers  events_bus {ours:6.0} ns  minimal_bus {theirs:6.0} ns  ratio {:.2}x",
        ours / theirs
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default();
    targets = bench
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    // `cargo test --benches` runs this binary with `--test`: criterion then
    // runs each bench once, as a smoke test; the timing below is skipped.
    if std::env::args().any(|a| a == "--test") {
        return;
    }
    interleaved_ratios();
}
