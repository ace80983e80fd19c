//! Trace context through moto (feature `otel`): a publish inside a span on one service and the handler on another share one trace, the consumer's `process` span a child of the `publish` span: through EventBridge → SQS and the `SqsConsumer`, through the Lambda SQS and EventBridge adapters, through the HTTP adapter, and for a failed-over event replayed later (it keeps its original publish's context). Python's package decodes an event carrying `_trace`.
//!
//! Each service is a tracer provider with an in-memory exporter and its
//! own subscriber, set for the test's thread only
//! (`tracing::subscriber::with_default`) around a current-thread runtime:
//! the services run one after the other on one thread, in one OS process,
//! with nothing shared but the wire (moto's EventBridge and SQS, a socket).

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use events_aws_tests::moto::{python, workspace_root, Moto};
use events_core::publisher::BoxFuture;
use events_core::{
    Accepted, DomainEvent, Event, EventBus, Handler, HandlerResult, Mode, PublishError, Publisher,
    RawEvent,
};
use events_eventbridge::lambda::{handle_eventbridge_event, handle_sqs_event};
use events_eventbridge::{EventBridgePublisher, Processed, Processor, SqsConsumer};
use events_examples::domain::events::CompanyCreated;
use opentelemetry::trace::{SpanId, TraceId, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::layer::SubscriberExt;

#[derive(DomainEvent, Debug, Clone)]
#[event(
    company = "acme",
    service = "shop",
    version = 1,
    resource = "order",
    action = "traced"
)]
struct OrderTraced {
    total: u64,
}

const NAME: &str = "acme.shop.1.event.order.traced";

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

    fn one(&self, name: &str) -> SpanData {
        let mut spans = self.spans(name);
        assert_eq!(spans.len(), 1, "one span {name:?}");
        spans.remove(0)
    }
}

/// The ids a publish span hands on: (trace id, span id).
fn ids(span: &SpanData) -> (TraceId, SpanId) {
    (span.span_context.trace_id(), span.span_context.span_id())
}

/// Asserts `consumer`'s one `process` span is a child of `publish`.
fn assert_child(consumer: &Service, publish: (TraceId, SpanId), path: &str) {
    let process = consumer.one(&format!("process {NAME}"));
    assert_eq!(
        process.span_context.trace_id(),
        publish.0,
        "{path}: one trace id on both sides"
    );
    assert_eq!(
        process.parent_span_id, publish.1,
        "{path}: child of publish"
    );
    assert!(process.parent_span_is_remote, "{path}");
}

/// Asserts `consumer` made no batch span: one event per call, its
/// `process` span the only consumer span, and nothing linked.
fn assert_no_batch(consumer: &Service, path: &str) {
    consumer.provider.force_flush().unwrap();
    let spans = consumer.exporter.get_finished_spans().unwrap();
    for span in &spans {
        assert!(span.links.is_empty(), "{path}: {} links", span.name);
        assert!(
            !span
                .attributes
                .iter()
                .any(|kv| kv.key.as_str() == "messaging.batch.message_count"),
            "{path}: {} is a batch span",
            span.name
        );
    }
}

/// Counts handled events.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<usize>>);

impl Handler<OrderTraced> for Seen {
    async fn handle(&self, _: &Event<OrderTraced>) -> HandlerResult {
        *self.0.lock().unwrap() += 1;
        Ok(())
    }
}

fn processor(seen: &Seen) -> Processor {
    Processor::new(
        EventBus::builder()
            .without_store()
            .discover(false)
            .register_handler_named::<OrderTraced, _>("seen", seen.clone())
            .build()
            .unwrap(),
    )
}

async fn publishing_bus(
    moto: &Moto,
    bus: &str,
    store: Arc<dyn events_core::EventStore>,
) -> EventBus {
    let publisher = EventBridgePublisher::builder()
        .bus(bus)
        .client(moto.eventbridge().await)
        .build()
        .await
        .unwrap();
    EventBus::builder()
        .mode(Mode::EventBridge)
        .store(store)
        .discover(false)
        .publisher(Arc::new(publisher))
        .build()
        .unwrap()
}

/// A remote bus in an outage: every event fails over.
struct Outage;
impl Publisher for Outage {
    fn name(&self) -> &str {
        "outage"
    }
    fn publish<'a>(
        &'a self,
        events: &'a [RawEvent],
    ) -> BoxFuture<'a, Vec<Result<Accepted, PublishError>>> {
        let answers = events
            .iter()
            .map(|_| Err(PublishError::retryable("ServiceUnavailable", "outage")))
            .collect();
        Box::pin(std::future::ready(answers))
    }
}

/// Publishes one event inside a `request` span on `service`; the ids of
/// its publish span.
fn publish_in_span(service: &Service, moto: &Moto, bus: &str) -> (TraceId, SpanId) {
    service.run(async {
        let bus = publishing_bus(moto, bus, Arc::new(events_core::MemoryStore::new())).await;
        let request = tracing::info_span!("request");
        let _entered = request.enter();
        let out = bus.publish(OrderTraced { total: 1 }).await.unwrap();
        assert!(
            matches!(out.delivery(), events_core::Delivery::Published { .. }),
            "{out:?}"
        );
    });
    let publish = service.one(&format!("publish {NAME}"));
    // Only the last publish of this service is asked for: clear for the next.
    service.exporter.reset();
    ids(&publish)
}

/// Drains the queue until one message came (at most 10 s); its body.
fn one_body(moto: &Moto, queue_url: &str) -> String {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Bounded polling: moto hands the event to the queue on its own time.
    for _ in 0..100 {
        let mut bodies = rt.block_on(moto.drain(queue_url));
        if !bodies.is_empty() {
            assert_eq!(bodies.len(), 1);
            return bodies.remove(0);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no message reached the queue");
}

/// Runs an `SqsConsumer` on `service` until `seen` counts one more event.
fn consume_one(service: &Service, moto: &Moto, queue_url: &str, seen: &Seen) {
    let before = *seen.0.lock().unwrap();
    service.run(async {
        let consumer = SqsConsumer::builder()
            .client(moto.sqs().await)
            .queue_url(queue_url)
            .wait_time(Duration::from_secs(1))
            .visibility_timeout(Duration::from_secs(5))
            .build(processor(seen).bus().clone())
            .await
            .unwrap();
        let token = CancellationToken::new();
        let run = tokio::spawn({
            let (consumer, token) = (consumer.clone(), token.clone());
            async move { consumer.run(token).await.unwrap() }
        });
        // Bounded polling: at most 60 s of the consumer's own long polls.
        for _ in 0..600 {
            if *seen.0.lock().unwrap() > before {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        token.cancel();
        run.await.unwrap();
    });
    assert_eq!(
        *seen.0.lock().unwrap(),
        before + 1,
        "the consumer handled it"
    );
}

#[test]
fn one_trace_from_the_publisher_to_each_consumer_path() {
    let moto = Moto::start();
    let route = Service::new().run(moto.bus_to_queue("traced"));
    let publisher = Service::new();

    // EventBridge → SQS → SqsConsumer.
    let publish = publish_in_span(&publisher, &moto, &route.bus);
    let sqs = Service::new();
    let seen = Seen::default();
    consume_one(&sqs, &moto, &route.queue_url, &seen);
    assert_child(&sqs, publish, "sqs");

    // The delivered envelope, through the Lambda adapters and HTTP.
    let publish = publish_in_span(&publisher, &moto, &route.bus);
    let body = one_body(&moto, &route.queue_url);
    let detail: serde_json::Value = serde_json::from_str(&body).unwrap();
    let traceparent = detail["detail"]["_trace"]["traceparent"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        traceparent,
        format!("00-{:032x}-{:016x}-01", publish.0, publish.1),
        "the delivered detail carries the publish span's context"
    );

    let lambda_sqs = Service::new();
    lambda_sqs.run(async {
        let event = serde_json::from_value(serde_json::json!({"Records": [{
            "messageId": "m-1", "receiptHandle": "r-1", "body": body,
            "attributes": {}, "messageAttributes": {}, "md5OfBody": "",
            "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:traced-queue",
            "awsRegion": "us-east-1"
        }]}))
        .unwrap();
        let response = handle_sqs_event(&processor(&seen), event).await;
        assert!(response.batch_item_failures.is_empty());
    });
    assert_child(&lambda_sqs, publish, "lambda sqs");

    let lambda_eb = Service::new();
    lambda_eb.run(async {
        let event = serde_json::from_str(&body).unwrap();
        let done = handle_eventbridge_event(&processor(&seen), &event)
            .await
            .unwrap();
        assert!(matches!(done, Processed::Handled { .. }), "{done:?}");
    });
    assert_child(&lambda_eb, publish, "lambda eventbridge");
    assert_no_batch(&lambda_eb, "lambda eventbridge");

    let http = Service::new();
    http.run(async {
        use events_eventbridge::http::{DispatchRouter, DISPATCH_PATH};
        let router = DispatchRouter::new(processor(&seen))
            .api_key("X-Events-Key", "s3cret-key")
            .build()
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            events_eventbridge::axum::serve(listener, router)
                .await
                .unwrap()
        });
        let request = format!(
            "POST {DISPATCH_PATH} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
             X-Events-Key: s3cret-key\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        server.abort();
    });
    assert_child(&http, publish, "http");
    assert_no_batch(&http, "http");
    assert_eq!(*seen.0.lock().unwrap(), 4, "every path ran the handler");

    // A Python service (package-events-bus's deserializer) decodes an
    // event carrying `_trace`.
    publisher.run(async {
        let bus =
            publishing_bus(&moto, &route.bus, Arc::new(events_core::MemoryStore::new())).await;
        let request = tracing::info_span!("request");
        let _entered = request.enter();
        bus.publish(CompanyCreated {
            company_id: uuid::Uuid::new_v4(),
            company_name: "Traced".into(),
            country_id: uuid::Uuid::new_v4(),
        })
        .await
        .unwrap();
    });
    let body = one_body(&moto, &route.queue_url);
    let envelope: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        envelope["detail"]["_trace"]["traceparent"]
            .as_str()
            .is_some_and(|t| t.starts_with("00-")),
        "{body}"
    );
    let mut child = std::process::Command::new(python())
        .arg(workspace_root().join("tests/interop/moto_interop.py"))
        .arg("decode-sqs")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(serde_json::to_string(&[&body]).unwrap().as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let decoded: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(decoded.len(), 1);
    assert_eq!(decoded[0]["attributes"]["company_name"], "Traced");
}

#[test]
fn a_failed_over_event_replayed_later_keeps_its_original_context() {
    let moto = Moto::start();
    let route = Service::new().run(moto.bus_to_queue("replayed"));
    // The embedded SQLite store, a file each service opens on its own.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let open = || -> Arc<dyn events_core::EventStore> {
        Arc::new(events_core::SqliteStore::open(&path).unwrap())
    };

    // The remote bus is down: the event waits in the store.
    let publisher = Service::new();
    publisher.run(async {
        let bus = EventBus::builder()
            .mode(Mode::EventBridge)
            .store(open())
            .discover(false)
            .publisher(Arc::new(Outage))
            .build()
            .unwrap();
        let request = tracing::info_span!("request");
        let _entered = request.enter();
        let out = bus.publish(OrderTraced { total: 1 }).await.unwrap();
        assert!(
            matches!(out.delivery(), events_core::Delivery::FailedOver { .. }),
            "{out:?}"
        );
    });
    let publish = ids(&publisher.one(&format!("publish {NAME}")));

    // Later, in another service's replay job, in a trace of its own, the
    // store opened again.
    let replayer = Service::new();
    replayer.run(async {
        let bus = publishing_bus(&moto, &route.bus, open()).await;
        let job = tracing::info_span!("replay job");
        let _entered = job.enter();
        let report = bus.publish_from_failover(10).await.unwrap();
        assert_eq!(report.sent.len(), 1, "{report:?}");
    });

    let consumer = Service::new();
    let seen = Seen::default();
    consume_one(&consumer, &moto, &route.queue_url, &seen);
    assert_child(&consumer, publish, "replayed");
}
