//! What the `otel` feature costs a publish → dispatch with no active trace context: this binary, built with and without the feature, times one publish (encoded for a remote bus that accepts it at once, then one in-process handler) and prints its best time per publish; `scripts/bench-otel` runs the two builds interleaved and prints the ratio.

#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Instant;

use events_core::publisher::BoxFuture;
use events_core::{
    Accepted, DomainEvent, Event, EventBus, Handler, HandlerResult, PublishError, Publisher,
    RawEvent,
};

#[derive(DomainEvent, Debug, Clone)]
#[event(
    company = "acme",
    service = "shop",
    version = 1,
    resource = "order",
    action = "placed"
)]
struct OrderPlaced {
    order_id: u64,
    total_cents: u64,
    note: String,
}

struct Books;
impl Handler<OrderPlaced> for Books {
    async fn handle(&self, event: &Event<OrderPlaced>) -> HandlerResult {
        black_box(event.total_cents);
        Ok(())
    }
}

/// A remote bus that accepts everything at once.
struct Accepts;
impl Publisher for Accepts {
    fn name(&self) -> &str {
        "accepts"
    }
    fn publish<'a>(
        &'a self,
        events: &'a [RawEvent],
    ) -> BoxFuture<'a, Vec<Result<Accepted, PublishError>>> {
        black_box(events.iter().filter(|e| e.trace.is_some()).count());
        Box::pin(std::future::ready(
            events.iter().map(|_| Ok(Accepted::default())).collect(),
        ))
    }
}

fn main() {
    // `cargo test --benches` runs this with `--test`: one round only.
    let rounds: usize = if std::env::args().any(|a| a == "--test") {
        1
    } else {
        std::env::var("ROUNDS")
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(40)
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    let bus = EventBus::builder()
        .without_store()
        .discover(false)
        .publisher(std::sync::Arc::new(Accepts))
        .dispatch_in_process(true)
        .register_handler_named::<OrderPlaced, _>("books", Books)
        .build()
        .unwrap_or_else(|e| panic!("bus: {e}"));
    let event = OrderPlaced {
        order_id: 42,
        total_cents: 12_990,
        note: "leave at the door".into(),
    };
    const CHUNK: u32 = 2_000;
    let mut best = f64::MAX;
    for _ in 0..rounds {
        let start = Instant::now();
        for _ in 0..CHUNK {
            black_box(rt.block_on(bus.publish(event.clone())).ok());
        }
        best = best.min(start.elapsed().as_nanos() as f64 / f64::from(CHUNK));
    }
    let feature = if cfg!(feature = "otel") { "on" } else { "off" };
    println!("otel={feature} best_ns_per_publish={best:.1}");
}
