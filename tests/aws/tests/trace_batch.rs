//! A batch's span links to its events' publishers (feature `otel`): the Lambda SQS adapter's `process {queue}` span carries one OpenTelemetry link per record with a context, exactly the publish spans' contexts, and `messaging.batch.message_count`; each record's `process {event name}` span stays a child of its own publish span.
//!
//! No server: the records are the envelopes EventBridge would deliver,
//! made from events published in spans into memory stores. Each service is
//! a tracer provider with an in-memory exporter and its own subscriber, set
//! for the test's thread only (`tracing::subscriber::with_default`).

use std::future::Future;
use std::sync::{Arc, Mutex};

use events_core::{wire, DomainEvent, Event, EventBus, Handler, HandlerResult, RawEvent};
use events_eventbridge::lambda::{handle_sqs_event, SqsEvent};
use events_eventbridge::Processor;
use opentelemetry::trace::{SpanContext, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing_subscriber::layer::SubscriberExt;

#[derive(DomainEvent, Debug, Clone)]
#[event(
    company = "acme",
    service = "shop",
    version = 1,
    resource = "order",
    action = "batched"
)]
struct OrderBatched {
    total: u64,
}

const NAME: &str = "acme.shop.1.event.order.batched";

/// One service's tracing.
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

    fn run<T>(&self, f: impl Future<Output = T>) -> T {
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

    /// The finished spans named `name`.
    fn spans(&self, name: &str) -> Vec<SpanData> {
        self.provider.force_flush().unwrap();
        self.exporter
            .get_finished_spans()
            .unwrap()
            .into_iter()
            .filter(|s| s.name == name)
            .collect()
    }
}

fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.to_string())
}

/// Counts handled events.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<usize>>);

impl Handler<OrderBatched> for Seen {
    async fn handle(&self, _: &Event<OrderBatched>) -> HandlerResult {
        *self.0.lock().unwrap() += 1;
        Ok(())
    }
}

/// Publishes one event inside a `request` span on a service of its own
/// into a memory store: the stored event and its publish span's context.
fn published_in_a_span(total: u64) -> (RawEvent, SpanContext) {
    let service = Service::new();
    let raw = service.run(async {
        let bus = EventBus::builder()
            .in_memory_store()
            .discover(false)
            .dispatch_in_process(false)
            .build()
            .unwrap();
        let request = tracing::info_span!("request");
        let _entered = request.enter();
        bus.publish(OrderBatched { total }).await.unwrap();
        let stored = bus.store().unwrap().peek(10).await.unwrap();
        assert_eq!(stored.len(), 1);
        stored[0].event.clone()
    });
    let mut publish = service.spans(&format!("publish {NAME}"));
    assert_eq!(publish.len(), 1);
    (raw, publish.remove(0).span_context)
}

/// The envelope EventBridge delivers to the queue.
fn envelope(raw: &RawEvent) -> String {
    format!(
        r#"{{"version":"0","id":"{}","detail-type":"{}","source":"acme.shop","detail":{}}}"#,
        uuid::Uuid::new_v4(),
        raw.name,
        wire::encode_detail(raw)
    )
}

fn sqs_event(bodies: &[String]) -> SqsEvent {
    let records: Vec<_> = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| {
            serde_json::json!({
                "messageId": format!("m-{i}"), "receiptHandle": format!("r-{i}"), "body": body,
                "attributes": {}, "messageAttributes": {}, "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:orders-queue",
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    serde_json::from_value(serde_json::json!({ "Records": records })).unwrap()
}

#[test]
fn the_lambda_batch_span_links_to_each_publisher_and_each_process_span_is_its_publishers_child() {
    let published: Vec<(RawEvent, SpanContext)> = (1..=3).map(published_in_a_span).collect();
    // A Python-published event: no `_trace`, so no link (and no parent).
    let plain = RawEvent::from_event(&Event::new(OrderBatched { total: 9 })).unwrap();
    assert!(plain.trace.is_none());
    let mut bodies: Vec<String> = published.iter().map(|(raw, _)| envelope(raw)).collect();
    bodies.push(envelope(&plain));

    let consumer = Service::new();
    let seen = Seen::default();
    consumer.run(async {
        let processor = Processor::new(
            EventBus::builder()
                .without_store()
                .discover(false)
                .register_handler_named::<OrderBatched, _>("seen", seen.clone())
                .build()
                .unwrap(),
        );
        let response = handle_sqs_event(&processor, sqs_event(&bodies)).await;
        assert!(response.batch_item_failures.is_empty());
    });
    assert_eq!(*seen.0.lock().unwrap(), 4, "every record handled");

    let mut batch = consumer.spans("process orders-queue");
    assert_eq!(batch.len(), 1, "one batch span");
    let batch = batch.remove(0);
    let linked: Vec<SpanContext> = batch
        .links
        .iter()
        .map(|link| link.span_context.clone())
        .collect();
    let publishers: Vec<SpanContext> = published
        .iter()
        .map(|(_, cx)| {
            // The link is to the remote context the event carried.
            SpanContext::new(
                cx.trace_id(),
                cx.span_id(),
                cx.trace_flags(),
                true,
                cx.trace_state().clone(),
            )
        })
        .collect();
    assert_eq!(linked, publishers, "exactly the publishers' span contexts");
    assert_eq!(
        attribute(&batch, "messaging.batch.message_count").as_deref(),
        Some("4")
    );
    assert_eq!(
        attribute(&batch, "messaging.system").as_deref(),
        Some("aws_sqs")
    );
    assert_eq!(
        attribute(&batch, "messaging.destination.name").as_deref(),
        Some("orders-queue")
    );

    let process = consumer.spans(&format!("process {NAME}"));
    assert_eq!(process.len(), 4);
    for (raw, publish) in &published {
        let span = process
            .iter()
            .find(|s| attribute(s, "messaging.message.id").as_deref() == Some(raw.id.as_str()))
            .unwrap_or_else(|| panic!("no process span for {}", raw.id));
        assert_eq!(span.span_context.trace_id(), publish.trace_id());
        assert_eq!(
            span.parent_span_id,
            publish.span_id(),
            "child of its publish"
        );
        assert!(span.parent_span_is_remote);
    }
    // The event without a context is processed under the batch span.
    let orphan = process
        .iter()
        .find(|s| attribute(s, "messaging.message.id").as_deref() == Some(plain.id.as_str()))
        .unwrap();
    assert_eq!(orphan.parent_span_id, batch.span_context.span_id());
    assert_eq!(
        orphan.span_context.trace_id(),
        batch.span_context.trace_id()
    );
}
