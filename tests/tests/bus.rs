//! The bus: discovery, dispatch semantics, delivery, configuration errors,
//! aggregates and the process-wide instance (SPEC §5–§6).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

// Linking the example crates makes their handlers discoverable here.
use company_notifications as _;
use events_core::bus::Delivery;
use events_core::store::{EventStore, MemoryStore, StoreError, StoreStats};
use events_core::{
    handler, BusError, DomainEvent, Event, EventBus, EventId, Handler, HandlerResult,
    HandlerStatus, Mode, RawEvent, Recorder,
};
use events_examples::domain::events::CompanyCreated;

// ------------------------------------------------------------------ events

#[derive(DomainEvent, Debug, Clone, PartialEq)]
#[event(
    company = "acme",
    service = "shop",
    version = 1,
    resource = "order",
    action = "placed"
)]
struct OrderPlaced {
    total: u64,
}

#[derive(DomainEvent, Debug, Clone, PartialEq)]
#[event(
    company = "acme",
    service = "shop",
    version = 1,
    resource = "payment",
    action = "failed"
)]
struct PaymentFailed {
    reason: String,
}

#[derive(DomainEvent, Debug, Clone, PartialEq)]
#[event(
    company = "acme",
    service = "shop",
    version = 1,
    resource = "parcel",
    action = "shipped"
)]
struct ParcelShipped {
    delay_ms: u64,
}

/// What handlers saw, by event id, so concurrent tests do not mix.
static SEEN: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

fn saw(id: &EventId, what: &str) {
    SEEN.lock().unwrap().push((id.to_string(), what.to_owned()));
}

fn seen(id: &EventId) -> Vec<String> {
    let mut v: Vec<String> = SEEN
        .lock()
        .unwrap()
        .iter()
        .filter(|(i, _)| i == id.as_str())
        .map(|(_, w)| w.clone())
        .collect();
    v.sort();
    v
}

// ---------------------------------------------------------------- handlers

#[handler]
async fn by_ref_envelope(event: &Event<OrderPlaced>) {
    saw(
        event.id(),
        &format!(
            "by_ref_envelope {} {}",
            event.total,
            event.occurred_on().timestamp_micros()
        ),
    );
}

#[handler]
async fn by_ref_event(event: &OrderPlaced) {
    // No id here: record under the total, which each test makes unique.
    SEEN.lock()
        .unwrap()
        .push((format!("total-{}", event.total), "by_ref_event".to_owned()));
}

#[handler]
async fn by_value_envelope(event: Event<OrderPlaced>) {
    saw(event.id(), "by_value_envelope");
}

#[handler]
async fn by_value_event(event: OrderPlaced) {
    SEEN.lock().unwrap().push((
        format!("total-{}", event.total),
        "by_value_event".to_owned(),
    ));
}

#[derive(Debug)]
struct Declined;

impl std::fmt::Display for Declined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("card declined")
    }
}

impl std::error::Error for Declined {}

#[handler]
async fn failing(_event: &PaymentFailed) -> Result<(), Declined> {
    Err(Declined)
}

#[handler]
async fn panicking(event: &PaymentFailed) {
    if event.reason == "panic" {
        panic!("handler blew up");
    }
}

#[handler]
async fn healthy(event: &Event<PaymentFailed>) {
    saw(event.id(), "healthy");
}

#[handler]
async fn slow(event: &Event<ParcelShipped>) {
    tokio::time::sleep(Duration::from_millis(event.delay_ms)).await;
    saw(event.id(), "slow finished");
}

/// A handler with a dependency, registered explicitly.
struct Counter(Arc<AtomicUsize>);

impl Handler<OrderPlaced> for Counter {
    async fn handle(&self, event: &Event<OrderPlaced>) -> HandlerResult {
        self.0.fetch_add(1, Ordering::SeqCst);
        saw(event.id(), "explicit counter");
        Ok(())
    }
}

fn bus() -> EventBus {
    EventBus::builder().in_memory_store().build().unwrap()
}

// ------------------------------------------------------------------- tests

#[tokio::test]
async fn discovery_sees_each_example_handler_exactly_once() {
    let bus = bus();
    let mut names = bus.handlers_of(CompanyCreated::EVENT_NAME);
    names.sort();
    assert_eq!(
        names,
        [
            "company_notifications::send_welcome_email",
            "events_examples::infrastructure::messaging::handlers::CreateDefaultSettings",
            "events_examples::infrastructure::messaging::handlers::log_company_created",
        ]
    );
    let registered: Vec<_> = events_core::handler::discovered_handlers()
        .filter(|h| h.event_name() == CompanyCreated::EVENT_NAME)
        .map(|h| h.name())
        .collect();
    assert_eq!(registered.len(), 3, "{registered:?}");
}

#[tokio::test]
async fn every_argument_form_runs_with_identity() {
    let bus = bus();
    let event = Event::new(OrderPlaced { total: 1001 });
    let (id, at) = (event.id().clone(), event.occurred_on());
    let outcome = bus.publish(event).await.unwrap();
    assert_eq!(outcome.id(), &id);
    assert_eq!(outcome.delivery(), &Delivery::Stored);
    assert!(outcome.failures().next().is_none(), "{outcome:?}");
    assert_eq!(
        seen(&id),
        [
            format!("by_ref_envelope 1001 {}", at.timestamp_micros()),
            "by_value_envelope".to_owned()
        ]
    );
    let by_total = seen(&EventId::from("total-1001"));
    assert_eq!(by_total, ["by_ref_event", "by_value_event"]);
    // Stable names: module path + function name.
    assert!(
        outcome.handler_names().any(|n| n == "bus::by_ref_envelope"),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn explicit_and_discovered_handlers_run_together() {
    let count = Arc::new(AtomicUsize::new(0));
    let bus = EventBus::builder()
        .in_memory_store()
        .register_handler(Counter(count.clone()))
        .build()
        .unwrap();
    let event = Event::new(OrderPlaced { total: 1002 });
    let id = event.id().clone();
    let outcome = bus.publish(event).await.unwrap();
    assert_eq!(count.load(Ordering::SeqCst), 1);
    assert_eq!(outcome.handlers().len(), 5, "{outcome:?}");
    assert_eq!(
        outcome.handlers().last().map(|h| h.handler.as_ref()),
        Some("bus::Counter")
    );
    assert!(seen(&id).contains(&"explicit counter".to_owned()));
}

#[tokio::test]
async fn registering_a_handler_twice_is_an_error() {
    let err = EventBus::builder()
        .in_memory_store()
        .register_handler_named::<OrderPlaced, _>("bus::by_ref_envelope", Counter(Arc::default()))
        .build()
        .unwrap_err();
    assert!(matches!(err, BusError::DuplicateHandler { .. }), "{err}");
    assert!(err.to_string().contains("bus::by_ref_envelope"), "{err}");
}

#[tokio::test]
async fn a_failing_and_a_panicking_handler_do_not_stop_a_healthy_one() {
    let bus = bus();
    for _ in 0..2 {
        let event = Event::new(PaymentFailed {
            reason: "panic".into(),
        });
        let id = event.id().clone();
        let outcome = bus.publish(event).await.unwrap();
        assert_eq!(seen(&id), ["healthy"]);
        let failures: HashMap<&str, &HandlerStatus> = outcome
            .failures()
            .map(|h| (h.handler.as_ref(), &h.status))
            .collect();
        assert_eq!(failures.len(), 2, "{outcome:?}");
        assert_eq!(
            failures["bus::failing"],
            &HandlerStatus::Failed("card declined".into())
        );
        assert_eq!(
            failures["bus::panicking"],
            &HandlerStatus::Panicked("handler blew up".into())
        );
    }
    // The bus is not poisoned: other events still flow.
    let outcome = bus.publish(OrderPlaced { total: 1003 }).await.unwrap();
    assert!(outcome.failures().next().is_none());
}

#[tokio::test]
async fn a_disabled_bus_publishes_nothing() {
    let store = Arc::new(MemoryStore::new());
    let bus = EventBus::builder()
        .enabled(false)
        .store(store.clone())
        .build()
        .unwrap();
    let event = Event::new(OrderPlaced { total: 1004 });
    let id = event.id().clone();
    let outcome = bus.publish(event).await.unwrap();
    assert_eq!(outcome.delivery(), &Delivery::Disabled);
    assert!(outcome.handlers().is_empty());
    assert!(seen(&id).is_empty());
    assert_eq!(store.stats().await.unwrap(), StoreStats::default());
}

#[tokio::test(start_paused = true)]
async fn async_mode_spawns_handlers_and_shutdown_waits_for_them() {
    let bus = EventBus::builder()
        .in_memory_store()
        .async_handlers(true)
        .build()
        .unwrap();
    let event = Event::new(ParcelShipped { delay_ms: 5_000 });
    let id = event.id().clone();
    let outcome = bus.publish(event).await.unwrap();
    assert_eq!(outcome.spawned(), 1);
    assert!(outcome.handlers().is_empty());
    assert!(
        seen(&id).is_empty(),
        "publish returned before the handler finished"
    );
    bus.shutdown(Duration::from_secs(60)).await.unwrap();
    assert_eq!(seen(&id), ["slow finished"]);
}

#[tokio::test(start_paused = true)]
async fn shutdown_reports_work_still_running_at_its_deadline() {
    let bus = EventBus::builder()
        .in_memory_store()
        .async_handlers(true)
        .build()
        .unwrap();
    bus.publish(ParcelShipped { delay_ms: 600_000 })
        .await
        .unwrap();
    let err = bus.shutdown(Duration::from_secs(1)).await.unwrap_err();
    assert!(
        matches!(err, BusError::ShutdownTimeout { pending: 1 }),
        "{err}"
    );
}

#[tokio::test]
async fn local_mode_stores_every_event_durably_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/folder/events.db");
    let bus = EventBus::builder().store_path(&path).build().unwrap();
    let first = bus.publish(OrderPlaced { total: 1005 }).await.unwrap();
    bus.publish_batch([
        Event::new(OrderPlaced { total: 1006 }),
        Event::new(OrderPlaced { total: 1007 }),
    ])
    .await
    .unwrap();
    drop(bus);
    // A new bus on the same file sees them, oldest first, identity kept.
    let bus = EventBus::builder().store_path(&path).build().unwrap();
    let stored = bus.consume(10).await.unwrap();
    assert_eq!(stored.len(), 3);
    assert_eq!(&stored[0].event.id, first.id());
    let totals: Vec<u64> = stored
        .iter()
        .map(|s| s.event.decode::<OrderPlaced>().unwrap().total)
        .collect();
    assert_eq!(totals, [1005, 1006, 1007]);
    assert!(
        bus.consume(10).await.unwrap().is_empty(),
        "consume takes them out"
    );
}

#[tokio::test]
async fn an_unwritable_store_path_is_a_clear_start_up_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"not a folder").unwrap();
    let err = EventBus::builder()
        .store_path(file.join("events.db"))
        .build()
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, BusError::Store(StoreError::Open { .. })),
        "{text}"
    );
    assert!(text.contains("cannot open the event store at"), "{text}");
    assert!(text.contains("a-file/events.db"), "{text}");
}

#[tokio::test]
async fn eventbridge_mode_without_the_publisher_is_a_clear_start_up_error() {
    let err = EventBus::builder()
        .mode(Mode::EventBridge)
        .in_memory_store()
        .connect()
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            BusError::NoPublisher {
                mode: Mode::EventBridge
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("events-eventbridge"), "{err}");
}

/// A real SQLite store whose file has reached its size limit, as on a full
/// disk (`max_size_bytes`): not one more event fits.
async fn full_store() -> (tempfile::TempDir, Arc<events_core::SqliteStore>) {
    let dir = tempfile::tempdir().unwrap();
    let store = events_core::SqliteStore::open_with(
        dir.path().join("events.db"),
        events_core::store::SqliteOptions {
            max_size_bytes: Some(64 * 1024),
            ..Default::default()
        },
    )
    .unwrap();
    for note in [2000, 200, 20, 0] {
        let mut n = 0;
        loop {
            let raw = RawEvent {
                attributes: format!(r#"{{"note":"{}"}}"#, "x".repeat(note)),
                ..RawEvent::from_event(&Event::new(OrderPlaced { total: n })).unwrap()
            };
            if store.store(vec![raw]).await.is_err() {
                break;
            }
            n += 1;
            assert!(n < 10_000, "the limit never hit");
        }
    }
    (dir, Arc::new(store))
}

#[tokio::test]
async fn recorded_events_are_cleared_only_after_a_successful_publish() {
    let mut recorder = Recorder::new();
    let first = recorder.record(OrderPlaced { total: 1008 }).clone();
    recorder.record(PaymentFailed { reason: "x".into() });

    let (_dir, full) = full_store().await;
    let failing = EventBus::builder().store(full).build().unwrap();
    let err = failing.publish_recorded(&mut recorder).await.unwrap_err();
    assert!(
        matches!(&err, BusError::NotDelivered { failed, .. } if failed.len() == 2),
        "{err}"
    );
    assert!(err.to_string().contains("full"), "{err}");
    assert_eq!(
        recorder.len(),
        2,
        "nothing was delivered, so nothing is forgotten"
    );
    assert!(
        seen(&first).is_empty(),
        "handlers do not run for an event that was not stored"
    );

    let outcome = bus().publish_recorded(&mut recorder).await.unwrap();
    assert!(recorder.is_empty());
    assert_eq!(outcome.events.len(), 2);
    assert_eq!(
        outcome.events[0].id(),
        &first,
        "identity fixed when recorded"
    );
    assert_eq!(outcome.events[1].name(), PaymentFailed::EVENT_NAME);
}

#[tokio::test]
async fn a_received_raw_event_is_decoded_and_dispatched() {
    let bus = bus();
    let event = Event::new(OrderPlaced { total: 1009 });
    let raw = RawEvent::from_event(&event).unwrap();
    let outcomes = bus.dispatch_raw(&raw).await.unwrap();
    assert_eq!(outcomes.len(), 4);
    assert_eq!(seen(event.id()).len(), 2);

    let unknown = RawEvent {
        name: "acme.shop.1.event.nobody.cared".into(),
        ..raw.clone()
    };
    assert!(
        bus.dispatch_raw(&unknown).await.unwrap().is_empty(),
        "no handler is not an error"
    );

    let broken = RawEvent {
        attributes: r#"{"total":"many"}"#.into(),
        ..raw
    };
    let err = bus.dispatch_raw(&broken).await.unwrap_err();
    assert!(err.to_string().contains("field `total`"), "{err}");
}

#[tokio::test]
async fn the_process_wide_bus_and_its_reset() {
    // The only test of this binary that needs the environment: its phases
    // run in child processes given EVENT_BUS_STORE_PATH (no set_var beside
    // the binary's other tests).
    const TEST: &str = "the_process_wide_bus_and_its_reset";
    let Some(phase) = events_tests::child::phase(TEST) else {
        let dir = tempfile::tempdir().unwrap();
        for (phase, file) in [("global", "global.db"), ("fresh", "fresh.db")] {
            let path = dir.path().join(file);
            events_tests::child::run(
                TEST,
                phase,
                &[("EVENT_BUS_STORE_PATH", Some(path.to_str().unwrap()))],
            );
        }
        return;
    };
    let env_store = std::path::PathBuf::from(std::env::var_os("EVENT_BUS_STORE_PATH").unwrap());

    if phase == "global" {
        events_core::reset_event_bus();
        let a = events_core::get_event_bus().await.unwrap();
        a.publish(OrderPlaced { total: 1010 }).await.unwrap();
        let b = events_core::get_event_bus().await.unwrap();
        // Local mode: the handled event is in the store's journal.
        assert_eq!(
            b.store().unwrap().stats().await.unwrap().handled,
            1,
            "one shared bus"
        );

        let own = bus();
        events_core::set_event_bus(own.clone());
        let c = events_core::get_event_bus().await.unwrap();
        assert_eq!(
            c.store().unwrap().stats().await.unwrap().pending,
            0,
            "the injected bus"
        );
        events_core::reset_event_bus();
        return;
    }

    // "fresh": after a reset, the next call builds a new bus from the
    // environment (another store path than the injected bus's).
    events_core::set_event_bus(bus());
    events_core::reset_event_bus();
    let d = events_core::get_event_bus().await.unwrap();
    assert_eq!(
        d.store().unwrap().stats().await.unwrap().pending,
        0,
        "a clean state after reset"
    );
    assert_eq!(d.config().store_path, env_store);
    events_core::reset_event_bus();
}

#[tokio::test]
async fn publishing_futures_are_send_and_static() {
    fn spawnable<F: std::future::Future + Send + 'static>(f: F) -> F {
        f
    }
    let bus = bus();
    let outcome = tokio::spawn(spawnable(bus.publish(OrderPlaced { total: 1011 })))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(outcome.name(), OrderPlaced::EVENT_NAME);
    tokio::spawn(spawnable(
        bus.publish_batch(vec![Event::new(OrderPlaced { total: 1012 })]),
    ))
    .await
    .unwrap()
    .unwrap();
    let replay = bus.publish_from_failover(1);
    assert!(
        matches!(
            tokio::spawn(spawnable(replay)).await.unwrap(),
            Err(BusError::NoPublisher { .. })
        ),
        "local mode has no publisher"
    );
    let mut recorder = Recorder::new();
    recorder.record(OrderPlaced { total: 1013 });
    fn send<F: std::future::Future + Send>(f: F) -> F {
        f
    }
    send(bus.publish_recorded(&mut recorder)).await.unwrap();
}

// ---------------------------------------------------------- remote publish

/// A remote bus that answers each event by its `total`: 0 accepted (with a
/// remote id), 1 throttled (retryable), 2 refused for good.
struct Answering;

impl events_core::Publisher for Answering {
    fn name(&self) -> &str {
        "answering"
    }
    fn publish<'a>(
        &'a self,
        events: &'a [RawEvent],
    ) -> events_core::publisher::BoxFuture<
        'a,
        Vec<Result<events_core::Accepted, events_core::PublishError>>,
    > {
        Box::pin(async move {
            events
                .iter()
                .map(|e| match e.decode::<OrderPlaced>().map(|o| o.total % 10) {
                    Ok(0) => Ok(events_core::Accepted {
                        remote_id: Some(format!("remote-{}", e.id)),
                    }),
                    Ok(1) => Err(events_core::PublishError::retryable(
                        "ThrottlingException",
                        "Rate exceeded",
                    )),
                    _ => Err(events_core::PublishError::permanent(
                        "AccessDeniedException",
                        "not allowed",
                    )),
                })
                .collect()
        })
    }
}

#[tokio::test]
async fn remote_answers_become_published_failed_over_or_dead_lettered() {
    let store = Arc::new(MemoryStore::new());
    let bus = EventBus::builder()
        .mode(Mode::EventBridge)
        .discover(false)
        .store(store.clone())
        .publisher(Arc::new(Answering))
        .build()
        .unwrap();
    let batch = bus
        .publish_batch([
            Event::new(OrderPlaced { total: 2000 }),
            Event::new(OrderPlaced { total: 2001 }),
            Event::new(OrderPlaced { total: 2002 }),
        ])
        .await
        .unwrap();
    let [published, throttled, refused] = &batch.events[..] else {
        panic!("three outcomes: {batch:?}");
    };
    assert_eq!(
        published.delivery(),
        &Delivery::Published {
            remote_id: Some(format!("remote-{}", published.id()))
        }
    );
    assert!(
        matches!(throttled.delivery(), Delivery::FailedOver { error } if error.contains("ThrottlingException")),
        "{throttled:?}"
    );
    assert!(
        matches!(refused.delivery(), Delivery::DeadLettered { error } if error.contains("AccessDeniedException")),
        "{refused:?}"
    );

    let pending = store.peek(10).await.unwrap();
    assert_eq!(
        pending.iter().map(|s| &s.event.id).collect::<Vec<_>>(),
        [throttled.id()],
        "only the retryable failure waits for replay"
    );
    let dead = store.dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(&dead[0].event.id, refused.id());
    assert!(dead[0]
        .last_error
        .as_deref()
        .is_some_and(|e| e.contains("AccessDeniedException")));
}

/// Trial of the production side, item 1: a publisher handed to the builder
/// was dropped without a word because the mode stayed `local`. Giving one
/// now means publishing through it; an explicit `local` after it wins and is
/// logged.
#[tokio::test]
async fn a_publisher_given_in_code_is_used_without_setting_the_mode() {
    let bus = EventBus::builder()
        .discover(false)
        .in_memory_store()
        .publisher(Arc::new(Answering))
        .build()
        .unwrap();
    assert_eq!(bus.config().mode, Mode::EventBridge);
    let out = bus
        .publish(Event::new(OrderPlaced { total: 4000 }))
        .await
        .unwrap();
    assert_eq!(
        out.delivery(),
        &Delivery::Published {
            remote_id: Some(format!("remote-{}", out.id()))
        }
    );

    let bus = EventBus::builder()
        .discover(false)
        .in_memory_store()
        .publisher(Arc::new(Answering))
        .mode(Mode::Local)
        .build()
        .unwrap();
    let out = bus
        .publish(Event::new(OrderPlaced { total: 4000 }))
        .await
        .unwrap();
    assert!(
        !matches!(out.delivery(), Delivery::Published { .. }),
        "local mode set after the publisher: {out:?}"
    );
}

/// Item 10 of the trial: a failover on first publish records the attempt
/// and its error, so `events list` shows why the event waits.
#[tokio::test]
async fn a_failover_on_first_publish_records_the_attempt_and_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(events_core::SqliteStore::open(dir.path().join("events.db")).unwrap());
    let bus = EventBus::builder()
        .mode(Mode::EventBridge)
        .discover(false)
        .store(store.clone())
        .publisher(Arc::new(Answering))
        .build()
        .unwrap();
    let out = bus
        .publish(Event::new(OrderPlaced { total: 3001 }))
        .await
        .unwrap();
    assert!(
        matches!(out.delivery(), Delivery::FailedOver { .. }),
        "{out:?}"
    );
    let stored = store.get(out.id().clone()).await.unwrap().unwrap();
    assert_eq!(stored.state, events_core::store::EventState::Pending);
    assert_eq!(stored.attempts, 1, "{stored:?}");
    assert_eq!(
        stored.last_error.as_deref(),
        Some("ThrottlingException: Rate exceeded")
    );
    assert!(stored.last_attempt_at.is_some(), "{stored:?}");
}

// ------------------------------------------------------- visible failures

/// What a `fmt` subscriber wrote, for tests that assert logs.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Logs;
    fn make_writer(&'a self) -> Logs {
        self.clone()
    }
}

impl Logs {
    /// Captures this thread's logs (warn and above, as a service's default
    /// `info` filter shows them) until the guard drops.
    fn capture() -> (Logs, tracing::subscriber::DefaultGuard) {
        let logs = Logs::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(logs.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        (logs, tracing::subscriber::set_default(subscriber))
    }

    /// The lines at `level` (e.g. `ERROR`).
    fn at(&self, level: &str) -> Vec<String> {
        String::from_utf8(self.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .filter(|l| l.split_whitespace().nth(1) == Some(level))
            .map(str::to_owned)
            .collect()
    }
}

/// Refuses every order.
struct Refuse;

impl Handler<OrderPlaced> for Refuse {
    async fn handle(&self, _event: &Event<OrderPlaced>) -> HandlerResult {
        Err("the ledger is closed".into())
    }
}

/// Takes an hour per order.
struct Slow;

impl Handler<OrderPlaced> for Slow {
    async fn handle(&self, _event: &Event<OrderPlaced>) -> HandlerResult {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok(())
    }
}

fn async_bus(handler: impl Handler<OrderPlaced>, name: &'static str) -> EventBus {
    EventBus::builder()
        .discover(false)
        .without_store()
        .async_handlers(true)
        .register_handler_named::<OrderPlaced, _>(name, handler)
        .build()
        .unwrap()
}

#[test]
fn a_spawned_handler_failure_is_logged_at_error_level_with_event_id_and_handler() {
    let (logs, _guard) = Logs::capture();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let id = rt.block_on(async {
        let bus = async_bus(Refuse, "billing::refuse");
        let outcome = bus.publish(OrderPlaced { total: 3001 }).await.unwrap();
        assert_eq!(outcome.spawned(), 1);
        assert!(outcome.handlers().is_empty(), "spawned: not in the outcome");
        bus.shutdown(Duration::from_secs(5)).await.unwrap();
        outcome.id().clone()
    });
    let errors = logs.at("ERROR");
    assert_eq!(errors.len(), 1, "{errors:?}");
    let line = &errors[0];
    for part in [
        "handler failed",
        "the ledger is closed",
        "handler=billing::refuse",
        OrderPlaced::EVENT_NAME,
        id.as_str(),
    ] {
        assert!(line.contains(part), "`{part}` missing from {line}");
    }
}

#[test]
fn dropping_the_bus_or_the_runtime_with_spawned_work_running_warns() {
    let (logs, _guard) = Logs::capture();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    let id = rt.block_on(async {
        let bus = async_bus(Slow, "shipping::slow");
        let outcome = bus.publish(OrderPlaced { total: 3002 }).await.unwrap();
        assert_eq!(outcome.spawned(), 1);
        tokio::task::yield_now().await; // the handler starts and sleeps
        drop(bus);
        outcome.id().clone()
    });
    let warnings = logs.at("WARN");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("event bus dropped with 1 spawned handler task(s) still running")
            && warnings[0].contains("shutdown"),
        "{warnings:?}"
    );

    // The runtime goes, taking the unfinished work with it: that is said too.
    drop(rt);
    let warnings = logs.at("WARN");
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    let line = &warnings[1];
    for part in [
        "spawned handler work was dropped before it finished",
        OrderPlaced::EVENT_NAME,
        id.as_str(),
    ] {
        assert!(line.contains(part), "`{part}` missing from {line}");
    }
}

#[test]
fn finished_spawned_work_and_a_bus_dropped_after_shutdown_say_nothing() {
    let (logs, _guard) = Logs::capture();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        let bus = async_bus(Slow, "shipping::slow");
        bus.publish(OrderPlaced { total: 3003 }).await.unwrap();
        bus.shutdown(Duration::from_secs(7200)).await.unwrap();
        drop(bus);
    });
    drop(rt);
    assert_eq!(logs.at("WARN"), Vec::<String>::new());
}

#[tokio::test]
async fn publish_batch_takes_bare_events_of_several_types() {
    let bus = bus();
    let batch = bus
        .publish_batch([
            events_core::AnyEvent::from(OrderPlaced { total: 4001 }),
            PaymentFailed {
                reason: "expired".into(),
            }
            .into(),
        ])
        .await
        .unwrap();
    let names: Vec<&str> = batch.events.iter().map(|o| o.name()).collect();
    assert_eq!(names, [OrderPlaced::EVENT_NAME, PaymentFailed::EVENT_NAME]);
    assert_ne!(
        batch.events[0].id(),
        batch.events[1].id(),
        "each gets its own id"
    );

    // One type: a plain array or Vec of bare events.
    let batch = bus
        .publish_batch(vec![
            OrderPlaced { total: 4002 },
            OrderPlaced { total: 4003 },
        ])
        .await
        .unwrap();
    assert_eq!(batch.events.len(), 2);
    assert!(batch.events.iter().all(|o| !o.handlers().is_empty()));
}
