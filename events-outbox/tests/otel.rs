//! Trace context through the outbox (feature `otel`) against a real PostgreSQL: `write` and `write_recorded` keep the request span's context in each row's detail, `write_raw` keeps an event's own, the relay sends them with it, and the consumer's `process` span is a child of the request's span.
//!
//! Each service (the one that writes, the relay, the consumer) is a tracer
//! provider with an in-memory exporter and its own subscriber, set for the
//! test's thread only (`tracing::subscriber::with_default`) around a
//! current-thread runtime: nothing is shared but PostgreSQL and the events.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failed test

use std::sync::{Arc, Mutex};
use std::time::Duration;

use events_core::publisher::BoxFuture;
use events_core::trace::TraceContext;
use events_core::{
    wire, Accepted, DomainEvent, Event, EventBus, Handler, HandlerResult, Mode, PublishError,
    Publisher, RawEvent, Recorder,
};
use opentelemetry::trace::{SpanId, TraceId, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use tracing_subscriber::layer::SubscriberExt;

#[derive(DomainEvent, Debug, Clone)]
#[event(
    company = "testclean",
    service = "outbox",
    version = 1,
    resource = "order",
    action = "traced"
)]
struct OrderTraced {
    n: u32,
}

const NAME: &str = "testclean.outbox.1.event.order.traced";

/// A context no span of the test made: what `write_raw` is given.
const GIVEN: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

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

fn hex(span: &SpanData) -> (String, String) {
    (
        format!("{:032x}", span.span_context.trace_id()),
        format!("{:016x}", span.span_context.span_id()),
    )
}

async fn pool(url: &str) -> PgPool {
    PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(60))
        .connect(url)
        .await
        .unwrap()
}

/// The `_trace` of each row's detail, in order.
async fn row_traces(pool: &PgPool) -> Vec<serde_json::Value> {
    let details: Vec<String> =
        sqlx::query_scalar("SELECT detail FROM events_outbox.messages ORDER BY seq")
            .fetch_all(pool)
            .await
            .unwrap();
    details
        .iter()
        .map(|d| serde_json::from_str::<serde_json::Value>(d).unwrap()["_trace"].clone())
        .collect()
}

/// The remote bus: keeps what the relay sends.
#[derive(Clone, Default)]
struct Sent(Arc<Mutex<Vec<RawEvent>>>);

impl Publisher for Sent {
    fn name(&self) -> &str {
        "recording"
    }
    fn publish<'a>(
        &'a self,
        events: &'a [RawEvent],
    ) -> BoxFuture<'a, Vec<Result<Accepted, PublishError>>> {
        self.0.lock().unwrap().extend(events.iter().cloned());
        let answers = events.iter().map(|_| Ok(Accepted::default())).collect();
        Box::pin(std::future::ready(answers))
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

fn envelope(raw: &RawEvent) -> String {
    format!(
        r#"{{"version":"0","id":"x","detail-type":"{}","source":"testclean.outbox","detail":{}}}"#,
        raw.name,
        wire::encode_detail(raw)
    )
}

#[test]
fn an_outbox_write_in_a_span_is_relayed_with_its_context_and_consumed_as_its_child() {
    let db = events_pg_tests::shared().database();
    let given = TraceContext::parse(GIVEN, Some("vendor=given")).unwrap();

    // Service A: a request saves an order and writes its events.
    let writer = Service::new();
    writer.run(async {
        let pool = pool(&db.url).await;
        events_outbox::migrate(&pool).await.unwrap();
        let mut tx = pool.begin().await.unwrap();
        {
            let request = tracing::info_span!("request");
            let _entered = request.enter();
            events_outbox::write(&mut tx, Some("o-1"), [Event::new(OrderTraced { n: 1 })])
                .await
                .unwrap();
            let mut recorder = Recorder::new();
            recorder.record(OrderTraced { n: 2 });
            events_outbox::write_recorded(&mut tx, "o-1", &mut recorder)
                .await
                .unwrap();
            // A raw event keeps the context it came with.
            let mut raw = RawEvent::from_event(&Event::new(OrderTraced { n: 3 })).unwrap();
            raw.trace = Some(given.clone());
            events_outbox::write_raw(&mut tx, Some("o-1"), &[raw])
                .await
                .unwrap();
        }
        // Outside any span: no context, no field.
        events_outbox::write(&mut tx, Some("o-1"), [Event::new(OrderTraced { n: 4 })])
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let request = hex(&writer.one("request"));
        let traces = row_traces(&pool).await;
        let expected = format!("00-{}-{}-01", request.0, request.1);
        assert_eq!(traces[0]["traceparent"], expected.as_str(), "{traces:?}");
        assert_eq!(traces[1]["traceparent"], expected.as_str(), "{traces:?}");
        assert_eq!(traces[2]["traceparent"], GIVEN);
        assert_eq!(traces[2]["tracestate"], "vendor=given");
        assert_eq!(
            traces[3],
            serde_json::Value::Null,
            "no `_trace` outside a span"
        );
    });
    let request = writer.one("request");

    // The relay, another process: it sends what the rows hold.
    let relay_service = Service::new();
    let sent = Sent::default();
    relay_service.run(async {
        let pool = pool(&db.url).await;
        let bus = EventBus::builder()
            .mode(Mode::EventBridge)
            .without_store()
            .discover(false)
            .publisher(Arc::new(sent.clone()))
            .build()
            .unwrap();
        let relay = events_outbox::Relay::spawn(
            pool,
            bus,
            events_outbox::RelayOptions {
                poll_interval: Duration::from_millis(50),
                ..Default::default()
            },
        );
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while sent.0.lock().unwrap().len() < 4 {
            assert!(tokio::time::Instant::now() < deadline, "relay sent nothing");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        relay.stop().await.unwrap();
    });
    let sent = sent.0.lock().unwrap().clone();
    let request_ids: (TraceId, SpanId) = (
        request.span_context.trace_id(),
        request.span_context.span_id(),
    );
    let (trace_id, span_id) = hex(&request);
    for raw in &sent[..2] {
        let trace = raw
            .trace
            .as_ref()
            .expect("relayed with the request's context");
        assert_eq!(
            (trace.trace_id(), trace.parent_id()),
            (&*trace_id, &*span_id)
        );
    }
    assert_eq!(sent[2].trace.as_ref(), Some(&given));
    assert_eq!(sent[3].trace, None);

    // Service B consumes the first: its `process` span continues the
    // request's trace.
    let consumer = Service::new();
    let seen = Seen::default();
    consumer.run(async {
        let bus = EventBus::builder()
            .without_store()
            .discover(false)
            .register_handler_named::<OrderTraced, _>("seen", seen.clone())
            .build()
            .unwrap();
        let received = bus.receive(&envelope(&sent[0])).unwrap();
        let span = received.span(Some("orders-queue"));
        tracing::Instrument::instrument(received.dispatch(), span)
            .await
            .unwrap();
    });
    assert_eq!(*seen.0.lock().unwrap(), 1);
    let process = consumer.one(&format!("process {NAME}"));
    assert_eq!(process.span_context.trace_id(), request_ids.0, "one trace");
    assert_eq!(
        process.parent_span_id, request_ids.1,
        "child of the request"
    );
    assert!(process.parent_span_is_remote);
}

/// A relay to a local-mode bus (no publisher: the handlers run in the
/// relay's process): each event's handlers run in a `process` span that is
/// a child of the request that wrote it, not of the relay's own spans.
#[test]
fn a_relay_to_a_local_bus_runs_the_handlers_in_the_requests_trace() {
    let db = events_pg_tests::shared().database();
    let writer = Service::new();
    writer.run(async {
        let pool = pool(&db.url).await;
        events_outbox::migrate(&pool).await.unwrap();
        let mut tx = pool.begin().await.unwrap();
        let request = tracing::info_span!("request");
        let mut recorder = Recorder::new();
        recorder.record(OrderTraced { n: 1 });
        tracing::Instrument::instrument(
            events_outbox::write_recorded(&mut tx, "o-1", &mut recorder),
            request,
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
    });
    let request = writer.one("request");

    let relay_service = Service::new();
    let seen = Seen::default();
    relay_service.run(async {
        let pool = pool(&db.url).await;
        let bus = EventBus::builder()
            .without_store()
            .discover(false)
            .register_handler_named::<OrderTraced, _>("seen", seen.clone())
            .build()
            .unwrap();
        let relay = events_outbox::Relay::spawn(
            pool,
            bus,
            events_outbox::RelayOptions {
                poll_interval: Duration::from_millis(50),
                ..Default::default()
            },
        );
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while *seen.0.lock().unwrap() < 1 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "relay ran no handler"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        relay.stop().await.unwrap();
    });
    let process = relay_service.one(&format!("process {NAME}"));
    assert_eq!(
        process.span_context.trace_id(),
        request.span_context.trace_id(),
        "the request's trace"
    );
    assert_eq!(process.parent_span_id, request.span_context.span_id());
    assert!(process.parent_span_is_remote);
    let handle = relay_service.one("handle");
    assert_eq!(
        handle.span_context.trace_id(),
        request.span_context.trace_id()
    );
}
