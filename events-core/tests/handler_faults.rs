//! Handlers that hang or fail: the handler timeout (paused clock) in
//! `publish`, in async mode's spawned work and for received events, and the
//! failure's log line carrying event name, id and handler at `RUST_LOG=warn`
//! (a warn-level subscriber, as production runs).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failed test

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use events_core::{
    BusConfig, DomainEvent, Event, EventBus, Handler, HandlerResult, HandlerStatus, RawEvent,
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
    total: u64,
}

/// Never returns.
struct Hangs;

impl Handler<OrderPlaced> for Hangs {
    async fn handle(&self, _: &Event<OrderPlaced>) -> HandlerResult {
        std::future::pending::<()>().await;
        Ok(())
    }
}

/// Waits `0` (on the tokio clock), then counts.
#[derive(Clone)]
struct Slow(Duration, Arc<AtomicUsize>);

impl Handler<OrderPlaced> for Slow {
    async fn handle(&self, _: &Event<OrderPlaced>) -> HandlerResult {
        tokio::time::sleep(self.0).await;
        self.1.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// Always fails.
struct Fails;

impl Handler<OrderPlaced> for Fails {
    async fn handle(&self, _: &Event<OrderPlaced>) -> HandlerResult {
        Err("the ledger is down".into())
    }
}

fn bus(async_handlers: bool, timeout: Option<Duration>, ran: &Arc<AtomicUsize>) -> EventBus {
    let mut builder = EventBus::builder()
        .without_store()
        .discover(false)
        .async_handlers(async_handlers)
        .register_handler_named::<OrderPlaced, _>("hangs", Hangs)
        .register_handler_named::<OrderPlaced, _>(
            "slow_but_in_time",
            Slow(Duration::from_secs(1), Arc::clone(ran)),
        );
    if let Some(timeout) = timeout {
        builder = builder.handler_timeout(timeout);
    }
    builder.build().unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_handler_that_never_returns_fails_at_the_timeout_and_the_others_still_run() {
    let ran = Arc::new(AtomicUsize::new(0));
    let bus = bus(false, Some(Duration::from_secs(5)), &ran);
    let start = tokio::time::Instant::now();
    let outcome = bus.publish(OrderPlaced { total: 3 }).await.unwrap();
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(6) && waited < Duration::from_secs(7),
        "5 s for the hung one, 1 s for the slow one: {waited:?}"
    );
    let failures: Vec<_> = outcome.failures().collect();
    assert_eq!(failures.len(), 1, "{outcome:?}");
    assert_eq!(failures[0].handler, "hangs");
    assert!(
        matches!(&failures[0].status, HandlerStatus::Failed(e)
            if e.starts_with("timed out after 5s") && e.contains("EVENT_BUS_HANDLER_TIMEOUT")),
        "{:?}",
        failures[0].status
    );
    assert_eq!(ran.load(Ordering::SeqCst), 1, "the next handler ran");
}

#[tokio::test(start_paused = true)]
async fn the_default_timeout_is_a_minute_and_the_environment_sets_it() {
    assert_eq!(
        BusConfig::default().handler_timeout,
        Duration::from_secs(60)
    );
    let ran = Arc::new(AtomicUsize::new(0));
    let bus = bus(false, None, &ran);
    let start = tokio::time::Instant::now();
    let outcome = bus.publish(OrderPlaced { total: 3 }).await.unwrap();
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(61) && waited < Duration::from_secs(62),
        "{waited:?}"
    );
    assert_eq!(outcome.failures().count(), 1);

    let config = BusConfig::from_lookup(|var| {
        (var == "EVENT_BUS_HANDLER_TIMEOUT").then(|| "250ms".to_owned())
    })
    .unwrap();
    let bus = EventBus::builder()
        .config(config)
        .without_store()
        .discover(false)
        .register_handler_named::<OrderPlaced, _>("hangs", Hangs)
        .build()
        .unwrap();
    let start = tokio::time::Instant::now();
    let outcome = bus.publish(OrderPlaced { total: 3 }).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_millis(250));
    assert_eq!(outcome.failures().count(), 1);
}

/// Async mode: the spawned work ends at the timeout, so `shutdown` does not
/// wait for ever (before, it timed out with the task still pending).
#[tokio::test(start_paused = true)]
async fn spawned_handler_work_ends_at_the_timeout() {
    let ran = Arc::new(AtomicUsize::new(0));
    let bus = bus(true, Some(Duration::from_secs(5)), &ran);
    let outcome = bus.publish(OrderPlaced { total: 3 }).await.unwrap();
    assert_eq!(outcome.spawned(), 2);
    bus.shutdown(Duration::from_secs(600)).await.unwrap();
    assert_eq!(ran.load(Ordering::SeqCst), 1);
}

/// What every consumer runs (SQS, Lambda and HTTP go through
/// `receive`/`dispatch`): the hung handler fails at the timeout.
#[tokio::test(start_paused = true)]
async fn a_received_event_s_hung_handler_fails_at_the_timeout() {
    let ran = Arc::new(AtomicUsize::new(0));
    let bus = bus(false, Some(Duration::from_secs(5)), &ran);
    let raw = RawEvent::from_event(&Event::new(OrderPlaced { total: 3 })).unwrap();
    let start = tokio::time::Instant::now();
    let outcomes = bus.dispatch_raw(&raw).await.unwrap();
    assert!(start.elapsed() < Duration::from_secs(7));
    assert!(
        matches!(&outcomes[0].status, HandlerStatus::Failed(e) if e.starts_with("timed out after 5s")),
        "{outcomes:?}"
    );
    assert_eq!(outcomes[1].status, HandlerStatus::Succeeded);
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // Never panics (a failed test's poisoned lock would abort the others).
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The logs of this test binary at WARN and above, as `RUST_LOG=warn`
/// keeps them: a global subscriber (tracing caches callsite interest
/// globally).
fn warn_logs() -> &'static Captured {
    static LOGS: OnceLock<Captured> = OnceLock::new();
    LOGS.get_or_init(|| {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        captured
    })
}

fn log_text() -> String {
    let bytes = warn_logs()
        .0
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The log line of `handler`'s failure for event `id`.
fn failure_line(handler: &str, id: &str) -> Option<String> {
    log_text()
        .lines()
        .find(|l| l.contains("handler failed") && l.contains(&format!("handler=\"{handler}\"")))
        .filter(|l| l.contains(&format!("id={id}")))
        .map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_handler_s_line_names_event_id_and_handler_at_warn_level() {
    warn_logs();
    for async_handlers in [false, true] {
        let handler = format!("fails_async_{async_handlers}");
        let bus = EventBus::builder()
            .without_store()
            .discover(false)
            .async_handlers(async_handlers)
            .register_handler_named::<OrderPlaced, _>(handler.clone(), Fails)
            .build()
            .unwrap();
        let outcome = bus.publish(OrderPlaced { total: 3 }).await.unwrap();
        bus.shutdown(Duration::from_secs(10)).await.unwrap();
        let id = outcome.id().as_str().to_owned();
        let line = failure_line(&handler, &id).unwrap_or_else(|| {
            panic!(
                "no line naming handler {handler} and id {id}:\n{}",
                log_text()
            )
        });
        assert!(
            line.contains("event=\"acme.shop.1.event.order.placed\""),
            "{line}"
        );
        assert!(line.contains("the ledger is down"), "{line}");
    }
    // A received event (what the consumers dispatch).
    let bus = EventBus::builder()
        .without_store()
        .discover(false)
        .register_handler_named::<OrderPlaced, _>("fails_received", Fails)
        .build()
        .unwrap();
    let raw = RawEvent::from_event(&Event::new(OrderPlaced { total: 3 })).unwrap();
    bus.dispatch_raw(&raw).await.unwrap();
    let line = failure_line("fails_received", raw.id.as_str()).expect("the received event's line");
    assert!(
        line.contains("event=\"acme.shop.1.event.order.placed\""),
        "{line}"
    );
}
