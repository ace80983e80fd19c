//! Trace context end to end in one process (feature `otel`): a publish inside a span writes its context into the event, the receiving side's `process` span is a child of the `publish` span, a stored event keeps its context, and events without or with a broken `_trace` are received normally.
//!
//! Two tracer providers with in-memory exporters stand for the two
//! services; each side's subscriber is set for its thread only
//! (`tracing::subscriber::with_default`), so tests share no global.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failed test

use std::sync::{Arc, Mutex};

use events_core::trace::TraceContext;
use events_core::{wire, DomainEvent, Event, EventBus, Handler, HandlerResult, RawEvent};
use opentelemetry::trace::{SpanId, TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;

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

const NAME: &str = "acme.shop.1.event.order.placed";

/// One service's tracing: a subscriber exporting to memory.
struct Service {
    exporter: InMemorySpanExporter,
    provider: SdkTracerProvider,
}

impl Service {
    fn new() -> Self {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        Service { exporter, provider }
    }

    /// Runs `f` on a current-thread runtime with this service's subscriber.
    fn run<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(self.provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(f)
        })
    }

    fn spans(&self) -> Vec<SpanData> {
        self.provider.force_flush().unwrap();
        self.exporter.get_finished_spans().unwrap()
    }

    fn span(&self, name: &str) -> SpanData {
        let spans = self.spans();
        spans
            .iter()
            .find(|s| s.name == name)
            .cloned()
            .unwrap_or_else(|| {
                let names: Vec<_> = spans.iter().map(|s| s.name.clone()).collect();
                panic!("no span {name:?} in {names:?}")
            })
    }
}

fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.to_string())
}

/// Counts the events it handles, and the trace id current in the handler.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<String>>>);

impl Handler<OrderPlaced> for Seen {
    async fn handle(&self, _: &Event<OrderPlaced>) -> HandlerResult {
        let cx = tracing::Span::current().context();
        let trace_id = format!("{:032x}", cx.span().span_context().trace_id());
        self.0.lock().unwrap().push(trace_id);
        Ok(())
    }
}

fn envelope(raw: &RawEvent) -> String {
    format!(
        r#"{{"version":"0","id":"x","detail-type":"{}","source":"acme.shop","detail":{}}}"#,
        raw.name,
        wire::encode_detail(raw)
    )
}

/// Publishes one event in a `request` span on `publisher`'s side into a
/// memory store; returns the stored event.
fn publish_in_a_span(publisher: &Service) -> RawEvent {
    publisher.run(async {
        let bus = EventBus::builder()
            .in_memory_store()
            .discover(false)
            .dispatch_in_process(false)
            .build()
            .unwrap();
        let request = tracing::info_span!("request");
        let _entered = request.enter();
        bus.publish(OrderPlaced { total: 3 }).await.unwrap();
        let stored = bus.store().unwrap().peek(10).await.unwrap();
        assert_eq!(stored.len(), 1);
        stored[0].event.clone()
    })
}

#[test]
fn the_consumers_process_span_is_a_child_of_the_publish_span() {
    let (publisher, consumer) = (Service::new(), Service::new());
    let raw = publish_in_a_span(&publisher);
    let publish = publisher.span(&format!("publish {NAME}"));
    let request = publisher.span("request");
    assert_eq!(publish.parent_span_id, request.span_context.span_id());
    assert_eq!(
        attribute(&publish, "messaging.message.id").as_deref(),
        Some(raw.id.as_str())
    );
    assert_eq!(
        attribute(&publish, "messaging.system").as_deref(),
        Some("events.local")
    );

    // The stored event carries the publish span's context ...
    let trace = raw.trace.clone().expect("the stored event has a context");
    let trace_id = format!("{:032x}", publish.span_context.trace_id());
    assert_eq!(trace.trace_id(), trace_id);
    assert_eq!(
        trace.parent_id(),
        format!("{:016x}", publish.span_context.span_id())
    );
    // ... which the wire writes in `_trace`.
    let detail: serde_json::Value = serde_json::from_str(&wire::encode_detail(&raw)).unwrap();
    assert_eq!(detail["_trace"]["traceparent"], trace.traceparent());

    let seen = Seen::default();
    consumer.run(async {
        let bus = EventBus::builder()
            .without_store()
            .discover(false)
            .register_handler_named::<OrderPlaced, _>("seen", seen.clone())
            .build()
            .unwrap();
        let received = bus.receive(&envelope(&raw)).unwrap();
        assert_eq!(received.trace(), Some(&trace));
        let span = received.span(Some("orders-queue"));
        let outcomes = tracing::Instrument::instrument(received.dispatch(), span)
            .await
            .unwrap();
        assert_eq!(outcomes.len(), 1);
    });
    let process = consumer.span(&format!("process {NAME}"));
    assert_eq!(
        format!("{:032x}", process.span_context.trace_id()),
        trace_id,
        "one trace across the two services"
    );
    assert_eq!(process.parent_span_id, publish.span_context.span_id());
    assert!(process.parent_span_is_remote);
    assert_eq!(
        attribute(&process, "messaging.message.id").as_deref(),
        Some(raw.id.as_str())
    );
    assert_eq!(
        attribute(&process, "messaging.destination.name").as_deref(),
        Some("orders-queue")
    );
    // The handler ran inside the trace.
    assert_eq!(*seen.0.lock().unwrap(), [trace_id]);
}

#[test]
fn events_without_or_with_a_broken_trace_field_are_received_as_roots() {
    let consumer = Service::new();
    let raw = RawEvent::from_event(&Event::new(OrderPlaced { total: 1 })).unwrap();
    assert!(raw.trace.is_none());
    let plain = envelope(&raw);
    assert!(!plain.contains("_trace"), "no field without a context");
    let broken = plain.replace(
        r#""attributes""#,
        r#""_trace":{"traceparent":"00-zz-01"},"attributes""#,
    );
    let wrong_type = plain.replace(r#""attributes""#, r#""_trace":[1,2],"attributes""#);
    let seen = Seen::default();
    consumer.run(async {
        let bus = EventBus::builder()
            .without_store()
            .discover(false)
            .register_handler_named::<OrderPlaced, _>("seen", seen.clone())
            .build()
            .unwrap();
        for body in [&plain, &broken, &wrong_type] {
            let received = bus.receive(body).unwrap();
            assert_eq!(received.trace(), None, "{body}");
            let span = received.span(None);
            tracing::Instrument::instrument(received.dispatch(), span)
                .await
                .unwrap();
            // The full decoder reads it alike.
            assert_eq!(wire::decode_envelope(body).unwrap().event.trace, None);
        }
    });
    assert_eq!(seen.0.lock().unwrap().len(), 3);
    for span in consumer.spans() {
        if span.name.starts_with("process ") {
            assert_eq!(span.parent_span_id, SpanId::INVALID, "a root");
        }
    }
}

#[test]
fn a_publish_outside_any_span_roots_its_trace_in_the_publish_span_and_the_context_survives_decoding(
) {
    let publisher = Service::new();
    let raw = publisher.run(async {
        let bus = EventBus::builder()
            .in_memory_store()
            .discover(false)
            .dispatch_in_process(false)
            .build()
            .unwrap();
        bus.publish(OrderPlaced { total: 3 }).await.unwrap();
        bus.store().unwrap().peek(1).await.unwrap()[0].event.clone()
    });
    // The publish span itself is the root, and its context is sent.
    let trace = raw.trace.clone().unwrap();
    let publish = publisher.span(&format!("publish {NAME}"));
    assert_eq!(publish.parent_span_id, SpanId::INVALID);
    assert_eq!(
        trace.parent_id(),
        format!("{:016x}", publish.span_context.span_id())
    );
    let back = wire::decode_detail(&wire::encode_detail(&raw)).unwrap();
    assert_eq!(back, raw);
    assert_eq!(
        TraceContext::from_span_context(&trace.span_context()),
        Some(trace)
    );
}
