//! Every assertion of the test kit (`events_core::testing`) fails with the
//! message asserted here: what was expected, and what was published or
//! happened instead (name, id, attributes).

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use chrono::{DateTime, Utc};
use events_core::testing::{
    assert_handlers_succeeded, run_handler, run_handlers, Expect, RecordingBus, Scenario,
};
use events_core::{handler, DomainEvent, Event, EventBus, HandlerOutcome, HandlerStatus};

#[derive(DomainEvent, Debug, Clone, PartialEq)]
#[event(
    company = "kit",
    service = "msg",
    version = 1,
    resource = "order",
    action = "placed"
)]
struct OrderPlaced {
    total: u64,
}

#[derive(DomainEvent, Debug, Clone, PartialEq)]
#[event(
    company = "kit",
    service = "msg",
    version = 1,
    resource = "order",
    action = "paid"
)]
struct OrderPaid {
    total: u64,
}

#[derive(DomainEvent, Debug, Clone, PartialEq)]
#[event(
    company = "kit",
    service = "msg",
    version = 1,
    resource = "order",
    action = "cancelled"
)]
struct OrderCancelled {
    reason: String,
}

#[derive(DomainEvent, Debug, Clone, PartialEq)]
#[event(
    company = "kit",
    service = "msg",
    version = 1,
    resource = "parcel",
    action = "shipped"
)]
struct ParcelShipped {
    hours: u64,
}

/// A field whose value does not survive its own round trip: it writes a
/// string and reads a number.
#[derive(Debug, Clone, PartialEq)]
struct Lossy;

impl serde::Serialize for Lossy {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("lossy")
    }
}

impl<'de> serde::Deserialize<'de> for Lossy {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        u32::deserialize(deserializer).map(|_| Lossy)
    }
}

#[derive(DomainEvent, Debug, Clone, PartialEq)]
#[event(
    company = "kit",
    service = "msg",
    version = 1,
    resource = "note",
    action = "written"
)]
struct NoteWritten {
    body: Lossy,
}

#[derive(Debug)]
struct Declined;

impl std::fmt::Display for Declined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("card declined")
    }
}

impl std::error::Error for Declined {}

/// Fails on a zero total.
#[handler]
async fn charge_card(event: &OrderPlaced) -> Result<(), Declined> {
    if event.total == 0 {
        return Err(Declined);
    }
    Ok(())
}

/// Panics on 13.
#[handler]
async fn audit_order(event: &OrderPlaced) {
    if event.total == 13 {
        panic!("unlucky total");
    }
}

/// Takes `hours` (of tokio time: the test pauses the clock).
#[handler]
async fn track_parcel(event: &ParcelShipped) {
    tokio::time::sleep(Duration::from_secs(event.hours * 3600)).await;
}

const PLACED: &str = "kit.msg.1.event.order.placed";
const PAID: &str = "kit.msg.1.event.order.paid";
const CANCELLED: &str = "kit.msg.1.event.order.cancelled";

fn at() -> DateTime<Utc> {
    "2026-01-01T00:00:00Z".parse().unwrap()
}

fn placed(id: &str, total: u64) -> Event<OrderPlaced> {
    Event::with_identity(id, at(), OrderPlaced { total })
}

fn paid(id: &str, total: u64) -> Event<OrderPaid> {
    Event::with_identity(id, at(), OrderPaid { total })
}

fn cancelled(id: &str, reason: &str) -> Event<OrderCancelled> {
    Event::with_identity(
        id,
        at(),
        OrderCancelled {
            reason: reason.into(),
        },
    )
}

fn text(panic: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<String>() {
        return s.clone();
    }
    if let Some(s) = panic.downcast_ref::<&str>() {
        return (*s).to_owned();
    }
    panic!("a panic without a message")
}

/// The message `f` panics with.
fn message(f: impl FnOnce()) -> String {
    match std::panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(()) => panic!("expected a panic, the assertion passed"),
        Err(panic) => text(panic),
    }
}

/// The message `f` panics with, for async assertions.
async fn message_of<T: Send + 'static>(f: impl Future<Output = T> + Send + 'static) -> String {
    match tokio::spawn(f).await {
        Ok(_) => panic!("expected a panic, the assertion passed"),
        Err(e) => text(e.into_panic()),
    }
}

/// `message` without its first line, which must be `scenario failed at
/// <this file>:<line>:<column>:` (the line of the test's `.when(..)`).
#[track_caller]
fn at_line(message: &str, line: u32) -> String {
    let (head, rest) = message.split_once('\n').unwrap_or((message, ""));
    let prefix = format!("scenario failed at {}:{line}:", file!());
    let column = head
        .strip_prefix(&prefix)
        .and_then(|h| h.strip_suffix(':'))
        .unwrap_or_else(|| panic!("the first line does not name {prefix}..: {message}"));
    assert!(column.parse::<u32>().is_ok(), "{message}");
    rest.to_owned()
}

async fn publish_three(bus: &EventBus) {
    bus.publish(placed("e1", 10)).await.unwrap();
    bus.publish(cancelled("e2", "out of stock")).await.unwrap();
    bus.publish(placed("e3", 20)).await.unwrap();
}

#[tokio::test]
async fn assert_published_when_nothing_was() {
    let bus = RecordingBus::new();
    assert_eq!(
        message(|| {
            bus.assert_published::<OrderPlaced>(|_| true);
        }),
        "expected a `kit.msg.1.event.order.placed` matching the condition to be published; it was not. Published:\n  (nothing)"
    );
}

#[tokio::test]
async fn assert_published_lists_the_events_of_other_types() {
    let bus = RecordingBus::new();
    publish_three(&bus).await;
    assert_eq!(
        message(|| {
            bus.assert_published::<OrderPaid>(|_| true);
        }),
        "expected a `kit.msg.1.event.order.paid` matching the condition to be published; it was not. Published:\n\
         \x20 1. kit.msg.1.event.order.placed id=e1 {\"total\":10}\n\
         \x20 2. kit.msg.1.event.order.cancelled id=e2 {\"reason\":\"out of stock\"}\n\
         \x20 3. kit.msg.1.event.order.placed id=e3 {\"total\":20}"
    );
}

#[tokio::test]
async fn assert_published_says_how_many_did_not_match() {
    let bus = RecordingBus::new();
    publish_three(&bus).await;
    assert_eq!(
        message(|| {
            bus.assert_published::<OrderPlaced>(|e| e.total == 30);
        }),
        "expected a `kit.msg.1.event.order.placed` matching the condition to be published; 2 were, none matching. Published:\n\
         \x20 1. kit.msg.1.event.order.placed id=e1 {\"total\":10}\n\
         \x20 2. kit.msg.1.event.order.cancelled id=e2 {\"reason\":\"out of stock\"}\n\
         \x20 3. kit.msg.1.event.order.placed id=e3 {\"total\":20}"
    );
    let one = RecordingBus::new();
    one.publish(placed("e9", 1)).await.unwrap();
    assert_eq!(
        message(|| {
            one.assert_published::<OrderPlaced>(|e| e.total == 2);
        }),
        "expected a `kit.msg.1.event.order.placed` matching the condition to be published; 1 was, none matching. Published:\n\
         \x20 1. kit.msg.1.event.order.placed id=e9 {\"total\":1}"
    );
    // And it passes, returning the event with its identity, when one matches.
    let found = bus.assert_published::<OrderPlaced>(|e| e.total == 20);
    assert_eq!(found, placed("e3", 20));
}

#[tokio::test]
async fn assert_not_published() {
    let bus = RecordingBus::new();
    publish_three(&bus).await;
    bus.assert_not_published::<OrderPaid>();
    assert_eq!(
        message(|| bus.assert_not_published::<OrderPlaced>()),
        "expected no `kit.msg.1.event.order.placed` to be published; 2 were. Published:\n\
         \x20 1. kit.msg.1.event.order.placed id=e1 {\"total\":10}\n\
         \x20 2. kit.msg.1.event.order.cancelled id=e2 {\"reason\":\"out of stock\"}\n\
         \x20 3. kit.msg.1.event.order.placed id=e3 {\"total\":20}"
    );
    assert_eq!(
        message(|| bus.assert_not_published::<OrderCancelled>()),
        "expected no `kit.msg.1.event.order.cancelled` to be published; 1 was. Published:\n\
         \x20 1. kit.msg.1.event.order.placed id=e1 {\"total\":10}\n\
         \x20 2. kit.msg.1.event.order.cancelled id=e2 {\"reason\":\"out of stock\"}\n\
         \x20 3. kit.msg.1.event.order.placed id=e3 {\"total\":20}"
    );
}

#[tokio::test]
async fn assert_published_in_order() {
    let bus = RecordingBus::new();
    publish_three(&bus).await;
    bus.assert_published_in_order(&[PLACED, CANCELLED, PLACED]);
    bus.assert_published_in_order(&[CANCELLED, PLACED]);
    assert_eq!(
        message(|| bus.assert_published_in_order(&[CANCELLED, PLACED, PAID])),
        "expected these events to be published in this order (others may come between):\n\
         \x20 1. kit.msg.1.event.order.cancelled\n\
         \x20 2. kit.msg.1.event.order.placed\n\
         \x20 3. kit.msg.1.event.order.paid\n\
         found 2 of 3 in order, then no `kit.msg.1.event.order.paid` after `kit.msg.1.event.order.placed`. Published:\n\
         \x20 1. kit.msg.1.event.order.placed id=e1 {\"total\":10}\n\
         \x20 2. kit.msg.1.event.order.cancelled id=e2 {\"reason\":\"out of stock\"}\n\
         \x20 3. kit.msg.1.event.order.placed id=e3 {\"total\":20}"
    );
    assert_eq!(
        message(|| bus.assert_published_in_order(&[PAID])),
        "expected these events to be published in this order (others may come between):\n\
         \x20 1. kit.msg.1.event.order.paid\n\
         found 0 of 1 in order, then no `kit.msg.1.event.order.paid`. Published:\n\
         \x20 1. kit.msg.1.event.order.placed id=e1 {\"total\":10}\n\
         \x20 2. kit.msg.1.event.order.cancelled id=e2 {\"reason\":\"out of stock\"}\n\
         \x20 3. kit.msg.1.event.order.placed id=e3 {\"total\":20}"
    );
}

#[tokio::test]
async fn assert_published_exactly_shows_a_diff() {
    let bus = RecordingBus::new();
    publish_three(&bus).await;
    bus.assert_published_exactly(&[PLACED, CANCELLED, PLACED]);
    assert_eq!(
        message(|| bus.assert_published_exactly(&[PLACED, PAID, PLACED])),
        "expected exactly these events, in this order (- expected, + published):\n\
         \x20   kit.msg.1.event.order.placed id=e1 {\"total\":10}\n\
         \x20 - kit.msg.1.event.order.paid\n\
         \x20 + kit.msg.1.event.order.cancelled id=e2 {\"reason\":\"out of stock\"}\n\
         \x20   kit.msg.1.event.order.placed id=e3 {\"total\":20}"
    );
    let empty = RecordingBus::new();
    empty.assert_published_exactly(&[]);
    assert_eq!(
        message(|| empty.assert_published_exactly(&[PAID])),
        "expected exactly these events, in this order (- expected, + published):\n\
         \x20 - kit.msg.1.event.order.paid"
    );
}

#[tokio::test]
async fn assert_handlers_succeeded_lists_every_outcome() {
    let outcomes = run_handlers(placed("e1", 0)).await;
    assert_eq!(
        message(|| assert_handlers_succeeded(&outcomes)),
        "expected every handler to succeed; 1 of 2 did not:\n\
         \x20   testing_messages::audit_order: succeeded\n\
         \x20 ✗ testing_messages::charge_card: failed: card declined"
    );
    let outcomes = run_handlers(placed("e2", 13)).await;
    assert_eq!(
        message(|| assert_handlers_succeeded(&outcomes)),
        "expected every handler to succeed; 1 of 2 did not:\n\
         \x20 ✗ testing_messages::audit_order: panicked: unlucky total\n\
         \x20   testing_messages::charge_card: succeeded"
    );
    assert_eq!(
        message(|| assert_handlers_succeeded(&[])),
        "expected handlers to run and succeed; none ran (is the crate with the handlers linked? `use my_handlers as _;`; \
         handlers registered with `register_handler` run with `bus.run_handlers(..)` on the `RecordingBus` they are \
         registered on)"
    );
    assert_handlers_succeeded(&run_handlers(placed("e3", 5)).await);
}

#[tokio::test]
async fn run_handler_by_name_and_its_unknown_name_message() {
    let outcome = run_handler("charge_card", placed("e1", 0)).await;
    assert_eq!(
        outcome,
        HandlerOutcome {
            handler: "testing_messages::charge_card".into(),
            status: HandlerStatus::Failed("card declined".into()),
        }
    );
    // The same outcome as when the bus runs all of them.
    let all = run_handlers(placed("e1", 0)).await;
    assert!(all.contains(&outcome), "{all:?}");

    assert_eq!(
        message_of(run_handler("charge_cards", placed("e2", 1))).await,
        "no discovered handler of `kit.msg.1.event.order.placed` named `charge_cards`; its handlers:\n\
         \x20 testing_messages::audit_order\n\
         \x20 testing_messages::charge_card"
    );
    assert_eq!(
        message_of(run_handler("anything", paid("e3", 1))).await,
        "no discovered handler of `kit.msg.1.event.order.paid` named `anything`; its handlers:\n\
         \x20 (none: is the crate with its handlers linked? `use my_handlers as _;`)"
    );
}

#[tokio::test]
async fn a_scenario_shows_events_and_handler_outcomes_as_a_diff() {
    let bus = RecordingBus::new();
    let target = bus.event_bus();
    let scenario = Scenario::new(&bus)
        .expect_event(|e: &Event<OrderPlaced>| e.total == 0)
        .expect_any::<OrderPaid>()
        .expect_handler("charge_card", Expect::Succeeded)
        .expect_handler("audit_order", Expect::Succeeded);
    let line = line!() + 1;
    let scenario = scenario.when(async move {
        target.publish(placed("e1", 0)).await.unwrap();
        target.publish(cancelled("e2", "fraud")).await.unwrap();
    });
    assert_eq!(
        at_line(&message_of(scenario).await, line),
        "events (- expected, + published):\n\
         \x20   kit.msg.1.event.order.placed id=e1 {\"total\":0}\n\
         \x20 - kit.msg.1.event.order.paid\n\
         \x20 + kit.msg.1.event.order.cancelled id=e2 {\"reason\":\"fraud\"}\n\
         handler outcomes (- expected, + actual):\n\
         \x20 - testing_messages::charge_card: succeeded\n\
         \x20 + testing_messages::charge_card on kit.msg.1.event.order.placed id=e1: failed: card declined\n\
         \x20   testing_messages::audit_order on kit.msg.1.event.order.placed id=e1: succeeded"
    );
}

#[tokio::test]
async fn a_scenario_reports_a_handler_nobody_expected_to_fail_and_one_that_did_not_run() {
    let bus = RecordingBus::new();
    let target = bus.event_bus();
    let scenario = Scenario::new(&bus)
        .expect_any::<OrderPlaced>()
        .expect_handler("charge_card", Expect::failed_with("declined"))
        .expect_handler("audit_order", Expect::Succeeded)
        .expect_handler("refund_card", Expect::Succeeded);
    let line = line!() + 1;
    let scenario = scenario.when(async move { target.publish(placed("e1", 0)).await.map(|_| ()) });
    // 0 is declined as expected; 13 is not involved; `refund_card` does not exist.
    assert_eq!(
        at_line(&message_of(scenario).await, line),
        "events (- expected, + published):\n\
         \x20   kit.msg.1.event.order.placed id=e1 {\"total\":0}\n\
         handler outcomes (- expected, + actual):\n\
         \x20   testing_messages::charge_card on kit.msg.1.event.order.placed id=e1: failed: card declined\n\
         \x20   testing_messages::audit_order on kit.msg.1.event.order.placed id=e1: succeeded\n\
         \x20 - refund_card: succeeded\n\
         \x20 + refund_card: did not run"
    );

    let bus = RecordingBus::new();
    let target = bus.event_bus();
    let scenario = Scenario::new(&bus)
        .expect_any::<OrderPlaced>()
        .expect_handler("charge_card", Expect::Succeeded);
    let line = line!() + 1;
    let scenario = scenario.when(async move { target.publish(placed("e2", 13)).await.map(|_| ()) });
    assert_eq!(
        at_line(&message_of(scenario).await, line),
        "events (- expected, + published):\n\
         \x20   kit.msg.1.event.order.placed id=e2 {\"total\":13}\n\
         handler outcomes (- expected, + actual):\n\
         \x20   testing_messages::charge_card on kit.msg.1.event.order.placed id=e2: succeeded\n\
         \x20 + testing_messages::audit_order on kit.msg.1.event.order.placed id=e2: panicked: unlucky total (not expected)"
    );
}

/// Strict for handlers: one that ran without an expectation fails the
/// scenario even when it succeeded (before, only unexpected failures did).
#[tokio::test]
async fn a_scenario_fails_on_a_handler_that_succeeded_without_being_expected() {
    let bus = RecordingBus::new();
    let target = bus.event_bus();
    let scenario = Scenario::new(&bus)
        .expect_any::<OrderPlaced>()
        .expect_handler("charge_card", Expect::Succeeded);
    let line = line!() + 1;
    let scenario = scenario.when(async move { target.publish(placed("e1", 5)).await.map(|_| ()) });
    assert_eq!(
        at_line(&message_of(scenario).await, line),
        "events (- expected, + published):\n\
         \x20   kit.msg.1.event.order.placed id=e1 {\"total\":5}\n\
         handler outcomes (- expected, + actual):\n\
         \x20   testing_messages::charge_card on kit.msg.1.event.order.placed id=e1: succeeded\n\
         \x20 + testing_messages::audit_order on kit.msg.1.event.order.placed id=e1: succeeded (not expected)"
    );

    // With every handler expected, it holds.
    let bus = RecordingBus::new();
    let target = bus.event_bus();
    Scenario::new(&bus)
        .expect_any::<OrderPlaced>()
        .expect_handler("charge_card", Expect::Succeeded)
        .expect_handler("audit_order", Expect::Succeeded)
        .when(async move { target.publish(placed("e1", 5)).await.map(|_| ()) })
        .await
        .unwrap();
}

/// Several scenarios in one test: the failure names the failing one's
/// `.when(..)` line in this file, not a line of the kit.
#[tokio::test]
async fn a_failed_scenario_names_the_line_of_its_when_in_the_test() {
    let bus = RecordingBus::new();
    let target = bus.event_bus();
    Scenario::new(&bus)
        .expect_any::<OrderPaid>()
        .when(target.publish(paid("e1", 1)))
        .await
        .unwrap();
    let target = bus.event_bus();
    let scenario = Scenario::new(&bus);
    let line = line!() + 1;
    let scenario = scenario.when(async move { target.publish(paid("e2", 2)).await.map(|_| ()) });
    let message = message_of(scenario).await;
    assert!(!message.contains("scenario.rs"), "{message}");
    assert_eq!(
        at_line(&message, line),
        "events (- expected, + published):\n\
         \x20 + kit.msg.1.event.order.paid id=e2 {\"total\":2}"
    );

    // In the usual chain, the line is the one of `.when(`.
    let target = bus.event_bus();
    let line = line!() + 4;
    let scenario = Scenario::new(&bus)
        .expect_any::<OrderPaid>()
        .expect_any::<OrderPaid>()
        .when(async move { target.publish(paid("e3", 3)).await.map(|_| ()) });
    assert_eq!(
        at_line(&message_of(scenario).await, line),
        "events (- expected, + published):\n\
         \x20   kit.msg.1.event.order.paid id=e3 {\"total\":3}\n\
         \x20 - kit.msg.1.event.order.paid"
    );
}

#[tokio::test]
async fn a_scenario_without_expectations_expects_nothing_published() {
    let bus = RecordingBus::new();
    let target = bus.event_bus();
    let scenario = Scenario::new(&bus);
    let line = line!() + 1;
    let scenario = scenario.when(async move { target.publish(paid("e1", 5)).await.map(|_| ()) });
    assert_eq!(
        at_line(&message_of(scenario).await, line),
        "events (- expected, + published):\n\
         \x20 + kit.msg.1.event.order.paid id=e1 {\"total\":5}"
    );
}

#[tokio::test]
async fn handler_expectations_need_a_bus_that_leaves_handlers_to_the_test() {
    let bus = RecordingBus::builder()
        .dispatch_in_process(true)
        .build()
        .unwrap();
    let scenario = Scenario::new(&bus).expect_handler("charge_card", Expect::Succeeded);
    let line = line!() + 1;
    let scenario = scenario.when(async {});
    let message = message_of(scenario).await;
    let (message, at) = message.split_once(" (scenario at ").unwrap();
    assert_eq!(
        message,
        "a scenario with handler expectations needs a recording bus that runs handlers when the test asks \
         (`RecordingBus::new()`); this one runs them in `publish`, where their outcomes go to the code under test"
    );
    assert!(at.starts_with(&format!("{}:{line}:", file!())), "{at}");
    let bus2 = bus.clone();
    assert_eq!(
        message_of(async move { bus2.dispatch_published().await }).await,
        "this recording bus runs handlers when events are published (`dispatch_in_process` or `async_handlers`); \
         dispatching what it recorded would run them twice. Build it with `RecordingBus::new()` to run handlers \
         when the test asks"
    );
}

#[tokio::test(start_paused = true)]
async fn settle_says_how_many_handlers_are_still_running() {
    let bus = RecordingBus::builder()
        .async_handlers(true)
        // Longer than the 48 hours the second parcel's handler waits.
        .handler_timeout(Duration::from_secs(7 * 24 * 3600))
        .build()
        .unwrap();
    let outcome = bus.publish(ParcelShipped { hours: 1 }).await.unwrap();
    assert_eq!(outcome.spawned(), 1);
    // An hour of handler work (paused clock: no real waiting) settles.
    bus.settle(Duration::from_secs(2 * 3600)).await;

    bus.publish(ParcelShipped { hours: 48 }).await.unwrap();
    let bus2 = bus.clone();
    // Within less than the bus's handler timeout (60 s), which would end
    // the 48 hours of work first.
    let message = message_of(async move { bus2.settle(Duration::from_secs(30)).await }).await;
    assert!(
        message.starts_with(
            "spawned handlers did not settle within 30s: 1 task(s) still running (settle called at tests/tests/testing_messages.rs:"
        ),
        "{message}"
    );
}

#[tokio::test]
async fn an_event_that_does_not_read_back_says_which_and_why() {
    let bus = RecordingBus::new();
    bus.publish(Event::with_identity(
        "n1",
        at(),
        NoteWritten { body: Lossy },
    ))
    .await
    .unwrap();
    let text = message(|| {
        bus.published::<NoteWritten>();
    });
    assert!(
        text.starts_with(
            "the published kit.msg.1.event.note.written id=n1 {\"body\":\"lossy\"} does not decode as \
             `testing_messages::NoteWritten`: cannot decode event `kit.msg.1.event.note.written`: field `body`"
        ),
        "{text}"
    );
    // The same from an assertion.
    assert_eq!(
        message(|| {
            bus.assert_published::<NoteWritten>(|_| true);
        }),
        text
    );
}
