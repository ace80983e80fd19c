//! Heap allocations per publish → dispatch in local mode with the store
//! disabled, counted with dhat. The bus adds no allocation per handler call
//! beyond the handler's boxed future. (A test binary of its own: dhat must be
//! the global allocator.) The figures are printed for BENCHMARKS.md:
//! `cargo test -p events-tests --test allocations -- --nocapture`.

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
            2,
            "one boxed future per extra handler, nothing else"
        );
        assert!(
            with_one <= 3,
            "publish with one handler allocated {with_one} blocks"
        );
    });
}
