//! The test kit's behaviour (`events_core::testing`): the recording bus runs
//! the real publish path and reads back what was sent; handlers run when the
//! test asks, in `publish`, or spawned (async mode) and settled without
//! sleeping; the handler runners give the bus's own outcomes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use events_core::bus::Delivery;
use events_core::testing::{run_handler, run_handlers, Dispatched, RecordingBus};
use events_core::{
    handler, DomainEvent, Event, EventBus, Handler, HandlerOutcome, HandlerResult, HandlerStatus,
    Recorder,
};

#[derive(DomainEvent, Debug, Clone, PartialEq)]
#[event(
    company = "kit",
    service = "behaviour",
    version = 1,
    resource = "invoice",
    action = "sent"
)]
struct InvoiceSent {
    number: u32,
}

#[derive(DomainEvent, Debug, Clone, PartialEq)]
#[event(
    company = "kit",
    service = "behaviour",
    version = 1,
    resource = "invoice",
    action = "paid"
)]
struct InvoicePaid {
    number: u32,
    amount_cents: u64,
}

#[derive(DomainEvent, Debug, Clone, PartialEq)]
#[event(
    company = "kit",
    service = "behaviour",
    version = 1,
    resource = "reminder",
    action = "sent"
)]
struct ReminderSent {
    number: u32,
    delay_ms: u64,
}

#[handler]
async fn archive_invoice(_event: &InvoiceSent) {}

#[handler]
async fn notify_accounting(event: &Event<InvoiceSent>) -> Result<(), std::io::Error> {
    if event.number == 0 {
        return Err(std::io::Error::other("invoice 0 does not exist"));
    }
    Ok(())
}

/// A handler with a dependency: it records what it saw.
#[derive(Clone, Default)]
struct Ledger(Arc<Mutex<Vec<String>>>);

impl Ledger {
    fn entries(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

impl Handler<InvoicePaid> for Ledger {
    async fn handle(&self, event: &Event<InvoicePaid>) -> HandlerResult {
        self.0.lock().unwrap().push(format!(
            "{} {} {}",
            event.id(),
            event.number,
            event.amount_cents
        ));
        Ok(())
    }
}

impl Handler<ReminderSent> for Ledger {
    async fn handle(&self, event: &Event<ReminderSent>) -> HandlerResult {
        tokio::time::sleep(Duration::from_millis(event.delay_ms)).await;
        self.0
            .lock()
            .unwrap()
            .push(format!("reminder {}", event.number));
        Ok(())
    }
}

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

#[tokio::test]
async fn published_events_come_back_typed_with_their_ids_and_times_in_order() {
    let bus = RecordingBus::new();
    let first = Event::with_identity(
        "a-1",
        at("2026-03-01T10:00:00.123456Z"),
        InvoiceSent { number: 1 },
    );
    bus.publish(first.clone()).await.unwrap();
    bus.publish(InvoicePaid {
        number: 1,
        amount_cents: 999,
    })
    .await
    .unwrap();
    let outcome = bus.publish(InvoiceSent { number: 2 }).await.unwrap();

    let sent = bus.published::<InvoiceSent>();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0], first);
    assert_eq!(sent[1].number, 2);
    assert_eq!(
        sent[1].id(),
        outcome.id(),
        "a bare event got its id on publish"
    );
    assert_eq!(bus.published::<InvoicePaid>()[0].amount_cents, 999);
    assert_eq!(
        bus.published_names(),
        [
            InvoiceSent::EVENT_NAME,
            InvoicePaid::EVENT_NAME,
            InvoiceSent::EVENT_NAME
        ]
    );
    // What was recorded is what EventBridge would have been sent.
    let raw = &bus.published_raw()[0];
    assert_eq!(raw.attributes, r#"{"number":1}"#);
    assert_eq!(
        events_core::wire::encode_detail(raw),
        r#"{"id":"a-1","type":"kit.behaviour.1.event.invoice.sent","occurred_on":"2026-03-01T10:00:00.123456+00:00","attributes":"{\"number\":1}"}"#
    );
}

#[tokio::test]
async fn the_code_under_test_gets_a_real_publish_outcome_and_nothing_runs_until_asked() {
    let ledger = Ledger::default();
    let bus = RecordingBus::builder()
        .register_handler::<InvoicePaid, _>(ledger.clone())
        .build()
        .unwrap();
    let injected: EventBus = bus.event_bus();
    let outcome = injected
        .publish(InvoicePaid {
            number: 7,
            amount_cents: 100,
        })
        .await
        .unwrap();
    assert_eq!(outcome.delivery(), &Delivery::Published { remote_id: None });
    assert!(outcome.handlers().is_empty());
    assert!(ledger.entries().is_empty(), "handlers wait for the test");

    let dispatched = bus.dispatch_published().await;
    assert_eq!(dispatched.len(), 1);
    assert_eq!(dispatched[0].event.id, *outcome.id());
    assert_eq!(
        dispatched[0].outcomes,
        [HandlerOutcome {
            handler: std::any::type_name::<Ledger>().into(),
            status: HandlerStatus::Succeeded,
        }]
    );
    assert_eq!(ledger.entries(), [format!("{} 7 100", outcome.id())]);

    // Only what was published since runs on the next call.
    assert_eq!(bus.dispatch_published().await, Vec::<Dispatched>::new());
    injected.publish(InvoiceSent { number: 0 }).await.unwrap();
    let dispatched = bus.dispatch_published().await;
    assert_eq!(dispatched.len(), 1);
    let statuses: Vec<_> = dispatched[0]
        .outcomes
        .iter()
        .map(|o| (o.handler.as_ref(), o.status.clone()))
        .collect();
    assert_eq!(
        statuses,
        [
            ("testing_kit::archive_invoice", HandlerStatus::Succeeded),
            (
                "testing_kit::notify_accounting",
                HandlerStatus::Failed("invoice 0 does not exist".into())
            ),
        ]
    );
    assert_eq!(ledger.entries().len(), 1);
}

#[tokio::test]
async fn batches_and_aggregates_are_recorded_in_order_and_the_recorder_is_cleared() {
    let bus = RecordingBus::new();
    bus.publish_batch(vec![
        events_core::AnyEvent::from(InvoiceSent { number: 1 }),
        events_core::AnyEvent::from(InvoicePaid {
            number: 1,
            amount_cents: 5,
        }),
    ])
    .await
    .unwrap();
    let mut recorder = Recorder::new();
    recorder.record(InvoiceSent { number: 2 });
    recorder.record(InvoiceSent { number: 3 });
    let outcome = bus.publish_recorded(&mut recorder).await.unwrap();
    assert!(recorder.is_empty());
    assert_eq!(outcome.events.len(), 2);
    let numbers: Vec<u32> = bus
        .published::<InvoiceSent>()
        .iter()
        .map(|e| e.number)
        .collect();
    assert_eq!(numbers, [1, 2, 3]);
    bus.assert_published_exactly(&[
        InvoiceSent::EVENT_NAME,
        InvoicePaid::EVENT_NAME,
        InvoiceSent::EVENT_NAME,
        InvoiceSent::EVENT_NAME,
    ]);

    // Clones share the recorder; clear forgets.
    let clone = bus.clone();
    clone.clear();
    bus.assert_published_exactly(&[]);
}

#[tokio::test]
async fn handlers_can_run_in_publish_as_in_local_mode() {
    let ledger = Ledger::default();
    let bus = RecordingBus::builder()
        .discover(false)
        .register_handler::<InvoicePaid, _>(ledger.clone())
        .dispatch_in_process(true)
        .build()
        .unwrap();
    let outcome = bus
        .publish(InvoicePaid {
            number: 3,
            amount_cents: 30,
        })
        .await
        .unwrap();
    assert_eq!(outcome.handlers().len(), 1);
    assert_eq!(ledger.entries(), [format!("{} 3 30", outcome.id())]);
    bus.assert_published::<InvoicePaid>(|e| e.number == 3);
}

/// `local_mode`: the outcome the code under test gets says `Stored`, as a
/// local-mode bus says it, where eventbridge mode's `Published` would
/// surprise code written for local mode; handlers run and the event is
/// recorded.
#[tokio::test]
async fn a_local_mode_recording_bus_reports_stored_as_local_mode_does() {
    let local = EventBus::builder()
        .mode(events_core::Mode::Local)
        .store(Arc::new(events_core::store::MemoryStore::new()))
        .discover(false)
        .build()
        .unwrap();
    let outcome = local.publish(InvoiceSent { number: 1 }).await.unwrap();
    assert_eq!(outcome.delivery(), &Delivery::Stored, "a real local bus");

    let ledger = Ledger::default();
    let bus = RecordingBus::builder()
        .discover(false)
        .register_handler::<InvoicePaid, _>(ledger.clone())
        .local_mode(true)
        .build()
        .unwrap();
    let outcome = bus
        .event_bus()
        .publish(InvoicePaid {
            number: 4,
            amount_cents: 40,
        })
        .await
        .unwrap();
    assert_eq!(outcome.delivery(), &Delivery::Stored);
    assert_eq!(outcome.handlers().len(), 1);
    assert_eq!(ledger.entries(), [format!("{} 4 40", outcome.id())]);
    bus.assert_published::<InvoicePaid>(|e| e.number == 4);
    let batch = bus
        .publish_batch(vec![InvoicePaid {
            number: 5,
            amount_cents: 50,
        }])
        .await
        .unwrap();
    assert_eq!(batch.events[0].delivery(), &Delivery::Stored);
}

#[tokio::test(start_paused = true)]
async fn async_mode_spawns_handlers_and_settle_waits_for_them_without_sleeping() {
    let ledger = Ledger::default();
    let bus = RecordingBus::builder()
        .discover(false)
        .register_handler::<ReminderSent, _>(ledger.clone())
        .async_handlers(true)
        .build()
        .unwrap();
    for number in 1..=3 {
        let outcome = bus
            .publish(ReminderSent {
                number,
                delay_ms: 500 * u64::from(number),
            })
            .await
            .unwrap();
        assert_eq!(outcome.spawned(), 1);
    }
    assert!(
        ledger.entries().is_empty(),
        "the handlers are still running"
    );
    bus.settle(Duration::from_secs(5)).await;
    let mut entries = ledger.entries();
    entries.sort();
    assert_eq!(entries, ["reminder 1", "reminder 2", "reminder 3"]);
    // The bus is still usable after settling.
    bus.publish(ReminderSent {
        number: 4,
        delay_ms: 1,
    })
    .await
    .unwrap();
    bus.settle(Duration::from_secs(5)).await;
    assert_eq!(ledger.entries().len(), 4);
}

#[tokio::test]
async fn run_handlers_gives_the_outcomes_a_publish_reports_and_run_handler_one_of_them() {
    let event = Event::new(InvoiceSent { number: 0 });
    let outcomes = run_handlers(event.clone()).await;

    let bus = EventBus::builder().without_store().build().unwrap();
    let published = bus.publish(event.clone()).await.unwrap();
    assert_eq!(outcomes, published.handlers());

    for outcome in &outcomes {
        assert_eq!(&run_handler(&outcome.handler, event.clone()).await, outcome);
    }
    let by_suffix = run_handler("notify_accounting", event).await;
    assert_eq!(
        by_suffix.status,
        HandlerStatus::Failed("invoice 0 does not exist".into())
    );
    assert!(run_handlers(InvoicePaid {
        number: 1,
        amount_cents: 1
    })
    .await
    .is_empty());
}

/// A registered handler of `InvoiceSent` with a dependency: refuses
/// invoice 7, records every number it saw.
#[derive(Clone, Default)]
struct Auditor(Arc<Mutex<Vec<u32>>>);

impl Auditor {
    fn seen(&self) -> Vec<u32> {
        self.0.lock().unwrap().clone()
    }
}

impl Handler<InvoiceSent> for Auditor {
    async fn handle(&self, event: &Event<InvoiceSent>) -> HandlerResult {
        self.0.lock().unwrap().push(event.number);
        if event.number == 7 {
            return Err("invoice 7 is under audit".into());
        }
        Ok(())
    }
}

/// The new-user trial: `run_handlers` ran the discovered handlers only, not
/// the explicitly registered ones. A recording bus runs all of its own.
#[tokio::test]
async fn a_recording_bus_runs_its_discovered_and_its_registered_handlers() {
    let auditor = Auditor::default();
    let ledger = Ledger::default();
    let bus = RecordingBus::builder()
        .register_handler(auditor.clone())
        .register_handler::<InvoicePaid, _>(ledger.clone())
        .build()
        .unwrap();

    let event = Event::new(InvoiceSent { number: 7 });
    let outcomes = bus.run_handlers(event.clone()).await;
    let names: Vec<&str> = outcomes.iter().map(|o| o.handler.as_ref()).collect();
    assert_eq!(
        names,
        [
            "testing_kit::archive_invoice",
            "testing_kit::notify_accounting",
            "testing_kit::Auditor"
        ]
    );
    // In the bus's own dispatch order.
    assert_eq!(names, bus.handlers_of(InvoiceSent::EVENT_NAME));
    assert_eq!(
        outcomes[2].status,
        HandlerStatus::Failed("invoice 7 is under audit".into())
    );
    assert_eq!(auditor.seen(), [7]);
    // The free function runs the discovered ones only, as documented.
    assert_eq!(run_handlers(event.clone()).await, outcomes[..2]);

    let paid = Event::new(InvoicePaid {
        number: 3,
        amount_cents: 250,
    });
    let outcomes = bus.run_handlers(paid.clone()).await;
    assert_eq!(
        outcomes,
        [HandlerOutcome {
            handler: "testing_kit::Ledger".into(),
            status: HandlerStatus::Succeeded,
        }]
    );
    assert_eq!(ledger.entries(), [format!("{} 3 250", paid.id())]);

    // One of them by name, registered or discovered.
    let outcome = bus
        .run_handler("Auditor", Event::new(InvoiceSent { number: 8 }))
        .await;
    assert_eq!(
        outcome,
        HandlerOutcome {
            handler: "testing_kit::Auditor".into(),
            status: HandlerStatus::Succeeded,
        }
    );
    assert_eq!(auditor.seen(), [7, 8]);
    assert_eq!(
        bus.run_handler("notify_accounting", Event::new(InvoiceSent { number: 0 }))
            .await
            .status,
        HandlerStatus::Failed("invoice 0 does not exist".into())
    );
    assert_eq!(auditor.seen(), [7, 8], "run_handler runs that one only");

    // Nothing of this was published.
    bus.assert_published_exactly(&[]);

    let unknown = bus.clone();
    let panic = tokio::spawn(async move {
        unknown
            .run_handler("Nobody", Event::new(InvoiceSent { number: 1 }))
            .await
    })
    .await
    .unwrap_err()
    .into_panic();
    assert_eq!(
        panic.downcast_ref::<String>().unwrap(),
        "no handler on this bus of `kit.behaviour.1.event.invoice.sent` named `Nobody`; its handlers:\n\
         \x20 testing_kit::Auditor\n\
         \x20 testing_kit::archive_invoice\n\
         \x20 testing_kit::notify_accounting"
    );

    // Without discovery, only the registered ones.
    let only_registered = RecordingBus::builder()
        .discover(false)
        .register_handler(Auditor::default())
        .build()
        .unwrap();
    let outcomes = only_registered
        .run_handlers(Event::new(InvoiceSent { number: 1 }))
        .await;
    assert_eq!(
        outcomes,
        [HandlerOutcome {
            handler: "testing_kit::Auditor".into(),
            status: HandlerStatus::Succeeded,
        }]
    );
}

#[tokio::test]
async fn refused_events_fail_over_or_become_dead_letters_and_are_not_recorded() {
    let bus = RecordingBus::new();
    bus.refuse_next(
        1,
        events_core::PublishError::permanent("ValidationException", "too large"),
    );
    bus.refuse_next(
        1,
        events_core::PublishError::retryable("ThrottlingException", "slow down"),
    );
    let outcome = bus
        .publish_batch(vec![
            events_core::AnyEvent::from(InvoiceSent { number: 1 }),
            events_core::AnyEvent::from(InvoiceSent { number: 2 }),
            events_core::AnyEvent::from(InvoiceSent { number: 3 }),
        ])
        .await
        .unwrap();
    let deliveries: Vec<&Delivery> = outcome.events.iter().map(|o| o.delivery()).collect();
    assert_eq!(
        deliveries,
        [
            &Delivery::DeadLettered {
                error: "ValidationException: too large".into()
            },
            &Delivery::FailedOver {
                error: "ThrottlingException: slow down".into()
            },
            &Delivery::Published { remote_id: None },
        ]
    );
    let numbers = |bus: &RecordingBus| -> Vec<u32> {
        bus.published::<InvoiceSent>()
            .iter()
            .map(|e| e.number)
            .collect()
    };
    assert_eq!(numbers(&bus), [3]);

    let store = bus.store().unwrap();
    let dead = store.dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].event.id, *outcome.events[0].id());
    let pending = store.peek(10).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].event.id, *outcome.events[1].id());

    // Replay sends the pending one here; the dead letter stays.
    bus.publish_from_failover(10).await.unwrap();
    assert_eq!(numbers(&bus), [3, 2]);
    assert_eq!(store.dead_letters(10).await.unwrap().len(), 1);
    assert!(store.peek(10).await.unwrap().is_empty());
}
