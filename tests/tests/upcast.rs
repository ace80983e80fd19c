//! Upcasting on the bus's inputs: a v1 or v2 event reaches a handler of v3
//! upcast (with its id, `occurred_on` and the name it was published under),
//! a handler of v1 in the same program gets v1, through `receive`,
//! `receive_raw`, `dispatch_raw` and an in-process publish; and, for any v1
//! attributes, the v3 handler gets what the user's conversions compute.

use std::sync::{Arc, Mutex};

use events_core::{wire, DomainEvent, Event, EventBus, Handler, HandlerResult, RawEvent};
use proptest::prelude::*;

#[derive(DomainEvent, Debug, Clone, PartialEq)]
#[event(
    company = "acme",
    service = "crm",
    version = 1,
    resource = "deal",
    action = "closed"
)]
pub struct DealClosedV1 {
    pub title: String,
    pub amount: u32,
}

#[derive(DomainEvent, Debug, Clone, PartialEq)]
#[event(
    company = "acme",
    service = "crm",
    version = 2,
    resource = "deal",
    action = "closed",
    upcast_from = DealClosedV1
)]
pub struct DealClosedV2 {
    pub title: String,
    pub cents: u64,
}

#[derive(DomainEvent, Debug, Clone, PartialEq)]
#[event(
    company = "acme",
    service = "crm",
    version = 3,
    resource = "deal",
    action = "closed",
    upcast_from = DealClosedV2
)]
pub struct DealClosedV3 {
    pub title: String,
    pub cents: u64,
    pub currency: String,
}

impl From<DealClosedV1> for DealClosedV2 {
    fn from(old: DealClosedV1) -> Self {
        DealClosedV2 {
            title: old.title.trim().to_owned(),
            cents: u64::from(old.amount) * 100,
        }
    }
}

impl From<DealClosedV2> for DealClosedV3 {
    fn from(old: DealClosedV2) -> Self {
        DealClosedV3 {
            currency: if old.title.is_empty() { "XXX" } else { "EUR" }.to_owned(),
            title: old.title,
            cents: old.cents,
        }
    }
}

/// What a handler saw: the payload, id, time and published name.
type Seen<E> = Arc<Mutex<Vec<(E, String, String, &'static str)>>>;

struct Record<E>(Seen<E>);

impl<E: DomainEvent + Clone> Handler<E> for Record<E> {
    async fn handle(&self, event: &Event<E>) -> HandlerResult {
        self.0.lock().unwrap().push((
            event.payload().clone(),
            event.id().to_string(),
            event.occurred_on().to_rfc3339(),
            event.published_as(),
        ));
        Ok(())
    }
}

fn bus() -> (EventBus, Seen<DealClosedV3>, Seen<DealClosedV1>) {
    let v3: Seen<DealClosedV3> = Arc::default();
    let v1: Seen<DealClosedV1> = Arc::default();
    let bus = EventBus::builder()
        .discover(false)
        .in_memory_store()
        .register_handler_named("v3", Record(Arc::clone(&v3)))
        .register_handler_named("v1", Record(Arc::clone(&v1)))
        .build()
        .unwrap();
    (bus, v3, v1)
}

const AT: &str = "2026-03-04T05:06:07.123456+00:00";

fn body(name: &str, attributes: &str) -> String {
    serde_json::json!({
        "version": "0", "id": "eb-1", "detail-type": name, "source": "acme.crm",
        "account": "1", "time": "2026-03-04T05:06:07Z", "region": "eu-west-1", "resources": [],
        "detail": {"id": "evt-1", "type": name, "occurred_on": AT, "attributes": attributes},
    })
    .to_string()
}

#[tokio::test]
async fn a_v1_body_reaches_the_v3_handler_upcast_and_the_v1_handler_as_is() {
    let (bus, v3, v1) = bus();
    assert_eq!(bus.handlers_of(DealClosedV1::EVENT_NAME), ["v1", "v3"]);
    let received = bus
        .receive(&body(
            DealClosedV1::EVENT_NAME,
            r#"{"title": " Big ", "amount": 12}"#,
        ))
        .unwrap();
    assert_eq!(received.name(), DealClosedV1::EVENT_NAME);
    assert_eq!(received.id().as_str(), "evt-1");
    let outcomes = received.dispatch().await.unwrap();
    assert_eq!(outcomes.len(), 2, "{outcomes:?}");
    let at = chrono::DateTime::parse_from_rfc3339(AT)
        .unwrap()
        .to_rfc3339();
    assert_eq!(
        v3.lock().unwrap().as_slice(),
        [(
            DealClosedV3 {
                title: "Big".into(),
                cents: 1200,
                currency: "EUR".into()
            },
            "evt-1".to_owned(),
            at.clone(),
            DealClosedV1::EVENT_NAME
        )]
    );
    assert_eq!(
        v1.lock().unwrap().as_slice(),
        [(
            DealClosedV1 {
                title: " Big ".into(),
                amount: 12
            },
            "evt-1".to_owned(),
            at,
            DealClosedV1::EVENT_NAME
        )]
    );
}

#[tokio::test]
async fn a_v2_raw_event_reaches_only_the_v3_handler() {
    let (bus, v3, v1) = bus();
    let raw = RawEvent {
        id: "evt-2".into(),
        name: DealClosedV2::EVENT_NAME.to_owned(),
        occurred_on: chrono::DateTime::parse_from_rfc3339(AT).unwrap().into(),
        attributes: r#"{"title": "", "cents": 5}"#.to_owned(),
        trace: None,
    };
    let outcomes = bus.dispatch_raw(&raw).await.unwrap();
    assert_eq!(outcomes.len(), 1);
    {
        let seen = v3.lock().unwrap();
        assert_eq!(seen[0].0.currency, "XXX");
        assert_eq!(seen[0].0.cents, 5);
        assert_eq!(seen[0].3, DealClosedV2::EVENT_NAME);
        assert!(v1.lock().unwrap().is_empty());
    }
    // A v3 event is not upcast: its published name is its own.
    let raw = RawEvent {
        name: DealClosedV3::EVENT_NAME.to_owned(),
        attributes: r#"{"title": "t", "cents": 5, "currency": "USD"}"#.to_owned(),
        ..raw
    };
    bus.receive_raw(&raw).dispatch().await.unwrap();
    let seen = v3.lock().unwrap();
    assert_eq!(seen[1].0.currency, "USD");
    assert_eq!(seen[1].3, DealClosedV3::EVENT_NAME);
}

#[tokio::test]
async fn a_v1_published_in_process_reaches_both_handlers() {
    let (bus, v3, v1) = bus();
    let event = Event::new(DealClosedV1 {
        title: "x".into(),
        amount: 1,
    });
    let id = event.id().to_string();
    let outcome = bus.publish(event).await.unwrap();
    assert_eq!(outcome.handler_names().count(), 2);
    assert_eq!(v3.lock().unwrap()[0].0.cents, 100);
    assert_eq!(v3.lock().unwrap()[0].1, id);
    assert_eq!(v1.lock().unwrap()[0].0.amount, 1);
}

#[tokio::test]
async fn a_v1_body_the_v1_type_refuses_is_a_decode_error() {
    let (bus, v3, _) = bus();
    let received = bus
        .receive(&body(
            DealClosedV1::EVENT_NAME,
            r#"{"title": "t", "amount": -1}"#,
        ))
        .unwrap();
    let err = received.dispatch().await.unwrap_err();
    assert!(err.to_string().contains(DealClosedV1::EVENT_NAME), "{err}");
    assert!(v3.lock().unwrap().is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// For any v1 attributes the v1 type accepts, the v3 handler receives
    /// what the user's conversions compute, on the one-pass path
    /// (`receive`) and on the raw one (`dispatch_raw`).
    #[test]
    fn the_v3_handler_gets_what_the_conversions_compute(title in ".*", amount in any::<u32>()) {
        let v1 = DealClosedV1 { title, amount };
        let expected = DealClosedV3::from(DealClosedV2::from(v1.clone()));
        let attributes = v1.to_json().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let (bus, v3, _) = bus();
        runtime.block_on(async {
            bus.receive(&body(DealClosedV1::EVENT_NAME, &attributes)).unwrap().dispatch().await.unwrap();
            let raw = wire::decode_envelope(&body(DealClosedV1::EVENT_NAME, &attributes)).unwrap().event;
            bus.dispatch_raw(&raw).await.unwrap();
        });
        let seen = v3.lock().unwrap();
        prop_assert_eq!(seen.len(), 2);
        prop_assert_eq!(&seen[0].0, &expected);
        prop_assert_eq!(&seen[1].0, &expected);
    }
}

#[derive(DomainEvent, Debug, Clone)]
#[event(
    company = "acme",
    service = "billing",
    version = 1,
    message_type = "command",
    resource = "invoice",
    action = "send"
)]
pub struct SendInvoiceV1 {
    pub invoice: String,
}

#[derive(DomainEvent, Debug, Clone)]
#[event(
    company = "acme",
    service = "billing",
    version = 2,
    message_type = "command",
    resource = "invoice",
    action = "send",
    upcast_from = SendInvoiceV1
)]
pub struct SendInvoiceV2 {
    pub invoice: String,
    pub copies: u32,
}

impl From<SendInvoiceV1> for SendInvoiceV2 {
    fn from(old: SendInvoiceV1) -> Self {
        SendInvoiceV2 {
            invoice: old.invoice,
            copies: 1,
        }
    }
}

/// A command has exactly one handler in a program: a second one (of the
/// same version, or of a newer version it is upcast to) fails the build of
/// the bus, naming both.
#[test]
fn a_second_handler_of_a_command_is_a_start_up_error_naming_both() {
    let seen: Seen<SendInvoiceV1> = Arc::default();
    let err = EventBus::builder()
        .discover(false)
        .without_store()
        .register_handler_named("billing::send", Record(Arc::clone(&seen)))
        .register_handler_named("mailing::send", Record(Arc::clone(&seen)))
        .build()
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, events_core::BusError::DuplicateCommandHandler { .. }),
        "{text}"
    );
    assert!(
        text.starts_with(
            "command `acme.billing.1.command.invoice.send` has two handlers, `billing::send` and `mailing::send`"
        ),
        "{text}"
    );

    let v2: Seen<SendInvoiceV2> = Arc::default();
    let err = EventBus::builder()
        .discover(false)
        .without_store()
        .register_handler_named("billing::send", Record(Arc::clone(&seen)))
        .register_handler_named("billing::send_v2", Record(v2))
        .build()
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("has two handlers, `billing::send` and `billing::send_v2`"),
        "{err}"
    );

    // One handler, of v2: a v1 command reaches it upcast.
    let v2: Seen<SendInvoiceV2> = Arc::default();
    let bus = EventBus::builder()
        .discover(false)
        .without_store()
        .register_handler_named("billing::send_v2", Record(Arc::clone(&v2)))
        .build()
        .unwrap();
    assert_eq!(
        bus.handlers_of(SendInvoiceV1::EVENT_NAME),
        ["billing::send_v2"]
    );
}
