//! A batch's span links to its events' publishers (feature `otel`): the Lambda SQS adapter's and the `SqsConsumer`'s `process {queue}` span carries one OpenTelemetry link per message with a context, exactly the publish spans' contexts, and `messaging.batch.message_count`, and takes its parent from none of them; each message's `process {event name}` span stays a child of its own publish span. The single-event paths (Lambda EventBridge, HTTP) have no batch span.
//!
//! The Lambda records are the envelopes EventBridge would deliver, made
//! from events published in spans into memory stores; the `SqsConsumer`
//! receives events published through moto (EventBridge → SQS). Each service
//! is a tracer provider with an in-memory exporter and its own subscriber,
//! set for the test's thread only (`tracing::subscriber::with_default`).

use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use events_aws_tests::moto::Moto;
use events_core::{wire, DomainEvent, Event, EventBus, Handler, HandlerResult, Mode, RawEvent};
use events_eventbridge::lambda::{handle_eventbridge_event, handle_sqs_event, SqsEvent};
use events_eventbridge::{EventBridgePublisher, Processed, Processor, SqsConsumer};
use opentelemetry::trace::{SpanContext, SpanId, SpanKind, TraceId, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tokio_util::sync::CancellationToken;
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
        self.all().into_iter().filter(|s| s.name == name).collect()
    }

    /// Every finished span.
    fn all(&self) -> Vec<SpanData> {
        self.provider.force_flush().unwrap();
        self.exporter.get_finished_spans().unwrap()
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
    assert_eq!(batch.span_kind, SpanKind::Consumer);
    assert_eq!(
        attribute(&batch, "messaging.operation.name").as_deref(),
        Some("process")
    );
    assert_eq!(
        batch.parent_span_id,
        SpanId::INVALID,
        "no parent: none of its events' publishers (no span was current)"
    );
    assert!(published
        .iter()
        .all(|(_, cx)| cx.trace_id() != batch.span_context.trace_id()));

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

/// The remote form of a span's context, as a link to it reads.
fn remote(cx: &SpanContext) -> SpanContext {
    SpanContext::new(
        cx.trace_id(),
        cx.span_id(),
        cx.trace_flags(),
        true,
        cx.trace_state().clone(),
    )
}

#[test]
fn the_lambda_eventbridge_adapter_gives_a_child_span_and_no_batch_span() {
    let (raw, publish) = published_in_a_span(5);
    let envelope: serde_json::Value = serde_json::from_str(&envelope(&raw)).unwrap();
    let event = serde_json::from_value(envelope).unwrap();
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
        let done = handle_eventbridge_event(&processor, &event).await.unwrap();
        assert!(matches!(done, Processed::Handled { .. }), "{done:?}");
    });
    let spans = consumer.all();
    assert!(
        spans
            .iter()
            .all(|s| s.links.is_empty() && attribute(s, "messaging.batch.message_count").is_none()),
        "no batch span: {:?}",
        spans.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
    let process = consumer.spans(&format!("process {NAME}"));
    assert_eq!(process.len(), 1);
    assert_eq!(process[0].span_context.trace_id(), publish.trace_id());
    assert_eq!(process[0].parent_span_id, publish.span_id());
}

/// A bus publishing to moto's EventBridge.
async fn publishing_bus(moto: &Moto, bus: &str) -> EventBus {
    let publisher = EventBridgePublisher::builder()
        .bus(bus)
        .client(moto.eventbridge().await)
        .build()
        .await
        .unwrap();
    EventBus::builder()
        .mode(Mode::EventBridge)
        .in_memory_store()
        .discover(false)
        .publisher(Arc::new(publisher))
        .build()
        .unwrap()
}

/// Waits (bounded polling, at most 10 s) until `n` messages are visible in
/// the queue, none received.
async fn visible(moto: &Moto, queue_url: &str, n: usize) {
    use aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages;
    let sqs = moto.sqs().await;
    for _ in 0..100 {
        let out = sqs
            .get_queue_attributes()
            .queue_url(queue_url)
            .attribute_names(ApproximateNumberOfMessages)
            .send()
            .await
            .unwrap();
        let count: usize = out
            .attributes
            .and_then(|a| a.get(&ApproximateNumberOfMessages).cloned())
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        if count >= n {
            assert_eq!(count, n);
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{n} messages never reached the queue");
}

#[test]
fn the_sqs_consumers_batch_span_links_to_each_publisher_and_each_process_span_is_its_publishers_child(
) {
    let moto = Moto::start();
    let route = Service::new().run(moto.bus_to_queue("batched"));
    let queue = "batched-queue";

    // One publishing process, three requests: three publish spans.
    let publisher = Service::new();
    publisher.run(async {
        let bus = publishing_bus(&moto, &route.bus).await;
        for total in 1..=3 {
            let request = tracing::info_span!("request", total);
            let _entered = request.enter();
            bus.publish(OrderBatched { total }).await.unwrap();
        }
        // All in the queue before the consumer starts: one receive takes them.
        visible(&moto, &route.queue_url, 3).await;
    });
    let publishes = publisher.spans(&format!("publish {NAME}"));
    assert_eq!(publishes.len(), 3);
    let traces: HashSet<TraceId> = publishes
        .iter()
        .map(|p| p.span_context.trace_id())
        .collect();
    assert_eq!(traces.len(), 3, "three requests, three traces");

    let consumer = Service::new();
    let seen = Seen::default();
    consumer.run(async {
        let bus = EventBus::builder()
            .without_store()
            .discover(false)
            .register_handler_named::<OrderBatched, _>("seen", seen.clone())
            .build()
            .unwrap();
        let consumer = SqsConsumer::builder()
            .client(moto.sqs().await)
            .queue_url(&route.queue_url)
            .max_messages(10)
            .concurrency(10)
            .wait_time(Duration::from_secs(1))
            .visibility_timeout(Duration::from_secs(30))
            .build(bus)
            .await
            .unwrap();
        let token = CancellationToken::new();
        let run = tokio::spawn({
            let (consumer, token) = (consumer.clone(), token.clone());
            async move { consumer.run(token).await.unwrap() }
        });
        // Bounded polling: at most 60 s of the consumer's own long polls.
        for _ in 0..600 {
            if *seen.0.lock().unwrap() >= 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        token.cancel();
        let report = run.await.unwrap();
        assert_eq!(report.handled, 3, "{report:?}");
    });
    assert_eq!(*seen.0.lock().unwrap(), 3, "every event handled once");

    // Each receive that brought messages has one batch span.
    let batches = consumer.spans(&format!("process {queue}"));
    assert!(!batches.is_empty(), "a batch span");
    let mut linked = Vec::new();
    let mut count = 0;
    for batch in &batches {
        assert_eq!(batch.span_kind, SpanKind::Consumer);
        assert_eq!(
            attribute(batch, "messaging.system").as_deref(),
            Some("aws_sqs")
        );
        assert_eq!(
            attribute(batch, "messaging.destination.name").as_deref(),
            Some(queue)
        );
        assert_eq!(
            attribute(batch, "messaging.operation.type").as_deref(),
            Some("process")
        );
        let n: usize = attribute(batch, "messaging.batch.message_count")
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(batch.links.len(), n, "one link per message of the batch");
        count += n;
        linked.extend(batch.links.iter().map(|l| l.span_context.clone()));
        // A trace root of its own: no parent, neither a publisher nor the
        // consumer's run.
        assert_eq!(batch.parent_span_id, SpanId::INVALID);
        assert!(!traces.contains(&batch.span_context.trace_id()));
    }
    assert_eq!(count, 3, "the counts add up to the messages");
    // Sorted by span id: the batches' links, together, are exactly the
    // publishers' contexts, each once.
    let key = |cx: &SpanContext| cx.span_id().to_string();
    linked.sort_by_key(key);
    let mut expected: Vec<SpanContext> =
        publishes.iter().map(|p| remote(&p.span_context)).collect();
    expected.sort_by_key(key);
    assert_eq!(linked, expected, "exactly the publish spans' contexts");
    if batches.len() == 1 {
        assert_eq!(count, 3, "one receive: one batch of three");
    }

    // Each handler's span is its own publisher's child, in its trace.
    let process = consumer.spans(&format!("process {NAME}"));
    assert_eq!(process.len(), 3);
    for publish in &publishes {
        let span = process
            .iter()
            .find(|s| s.parent_span_id == publish.span_context.span_id())
            .unwrap_or_else(|| panic!("no process span child of {:?}", publish.span_context));
        assert_eq!(
            span.span_context.trace_id(),
            publish.span_context.trace_id()
        );
        assert!(span.parent_span_is_remote);
        assert_eq!(
            attribute(span, "messaging.destination.name").as_deref(),
            Some(queue),
            "the consumer names its queue"
        );
    }
}
