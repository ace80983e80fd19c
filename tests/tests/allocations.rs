//! Heap allocations per publish → dispatch in local mode with the store
//! disabled, counted with dhat: the shared event, the label list of the
//! publish's `events_published_total` and, per handler call, its
//! boxed future and the two label lists of its metrics (the `metrics`
//! macros build a key per call, recorder or not), nothing else (the outcome
//! of handlers that all succeed shares the list the bus built once). And per received envelope body →
//! `EventBus::receive` → dispatch to one handler. (A test binary of its own:
//! dhat must be the global allocator.) The figures are printed for
//! BENCHMARKS.md: `cargo test -p events-tests --test allocations -- --nocapture`.

use events_core::{handler, DomainEvent, Event, EventBus};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

#[derive(DomainEvent, Debug, Clone)]
#[event(
    company = "testclean",
    service = "api",
    version = 1,
    resource = "company",
    action = "created"
)]
struct CompanyCreated {
    company_id: uuid::Uuid,
    company_name: String,
    country_id: uuid::Uuid,
}

#[derive(DomainEvent, Debug, Clone)]
#[event(
    company = "testclean",
    service = "api",
    version = 1,
    resource = "company",
    action = "renamed"
)]
struct CompanyRenamed {
    company_name: String,
}

#[handler]
async fn one(event: &Event<CompanyCreated>) {
    std::hint::black_box(&event.company_name);
}

#[handler]
async fn first(event: &Event<CompanyRenamed>) {
    std::hint::black_box(&event.company_name);
}

#[handler]
async fn second(event: &Event<CompanyRenamed>) {
    std::hint::black_box(&event.company_name);
}

#[handler]
async fn third(event: &CompanyRenamed) {
    std::hint::black_box(&event.company_name);
}

/// Allocations of one `publish` of an already-built event.
async fn per_publish<E: DomainEvent + Clone>(bus: &EventBus, event: &Event<E>) -> u64 {
    // Warm up (first-use allocations of the runtime and the bus).
    for _ in 0..3 {
        bus.publish(event.clone()).await.unwrap();
    }
    let event = event.clone();
    let before = dhat::HeapStats::get().total_blocks;
    let outcome = bus.publish(event).await.unwrap();
    let after = dhat::HeapStats::get().total_blocks;
    drop(outcome);
    after - before
}

#[test]
fn no_allocation_per_handler_call_beyond_its_boxed_future() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let bus = EventBus::builder().without_store().build().unwrap();
        let created = Event::new(CompanyCreated {
            company_id: uuid::Uuid::new_v4(),
            company_name: "Test Company".into(),
            country_id: uuid::Uuid::new_v4(),
        });
        let renamed = Event::new(CompanyRenamed {
            company_name: "Test Company".into(),
        });
        let with_one = per_publish(&bus, &created).await;
        let with_three = per_publish(&bus, &renamed).await;
        println!("allocations per publish: 1 handler: {with_one}, 3 handlers: {with_three}");
        assert_eq!(
            with_three - with_one,
            2 * 3,
            "per extra handler: its boxed future and its metrics' two label lists, nothing else"
        );
        assert_eq!(
            with_one, 5,
            "publish with one handler: the shared event, the label list of events_published_total, \
             the handler's future and its metrics' two label lists"
        );
        received_body(&bus).await;
    });
}

/// Allocations of one received body → `receive` → dispatch.
async fn per_body(bus: &EventBus, body: &str) -> u64 {
    for _ in 0..3 {
        bus.receive(body).unwrap().dispatch().await.unwrap();
    }
    let before = dhat::HeapStats::get().total_blocks;
    let outcomes = bus.receive(body).unwrap().dispatch().await.unwrap();
    let after = dhat::HeapStats::get().total_blocks;
    assert_eq!(outcomes.len(), 1);
    drop(outcomes);
    after - before
}

/// A received body: the attributes unescaped from their string (the JSON
/// parser's buffer grows to hold them, a few blocks for this body, and the
/// text is copied out), the event id, the name the event holds, the shared
/// event, the handler's future and its metrics' two label lists. Nothing
/// per handler list or outcome.
async fn received_body(bus: &EventBus) {
    let event = Event::new(CompanyCreated {
        company_id: uuid::Uuid::new_v4(),
        company_name: "Test Company".into(),
        country_id: uuid::Uuid::new_v4(),
    });
    let raw = events_core::RawEvent::from_event(&event).unwrap();
    let body = format!(
        r#"{{"version":"0","id":"{}","detail-type":"{}","source":"testclean.api","account":"123456789012","time":"2026-11-27T10:15:30Z","region":"us-east-1","resources":[],"detail":{}}}"#,
        uuid::Uuid::new_v4(),
        raw.name,
        events_core::wire::encode_detail(&raw)
    );
    let blocks = per_body(bus, &body).await;
    println!("allocations per received body, 1 handler: {blocks}");
    assert!(blocks <= 12, "a received body allocated {blocks} blocks");
}
