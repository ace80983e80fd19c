//! The company example's trace export (feature `otel`): the use case in its request span, exported to stdout as one trace (request → publish, request → dispatch → handle), and over OTLP/HTTP (protobuf) to a collector at `OTEL_EXPORTER_OTLP_ENDPOINT`.
//!
//! The stdout exporter prints with `println!`, which the test harness
//! cannot capture from the exporter's thread: the stdout test runs its
//! other half (an ignored test) in a child process of this test binary and
//! reads the child's stdout. The OTLP test is a tiny HTTP receiver on
//! 127.0.0.1 started by the test.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failed test

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::{mpsc, Arc};
use std::time::Duration;

// Linking the crate makes its handlers discoverable.
use company_notifications as _;
use events_core::EventBus;
use events_examples::application::{CreateCompanyDto, CreateCompanyUseCase};
use events_examples::infrastructure::repository::InMemoryCompanyRepository;
use events_examples::telemetry::{request_span, ExportTo, Telemetry, TelemetryError};
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;
use uuid::Uuid;

const PUBLISH: &str = "publish testclean.api.1.event.company.created";

/// What the example's `main` does, on a bus with an in-memory store (local
/// mode: the `publish` span is made) and the discovered handlers.
async fn create_company_in_a_request() {
    let bus = EventBus::builder().in_memory_store().build().unwrap();
    let use_case =
        CreateCompanyUseCase::new(Arc::new(InMemoryCompanyRepository::default()), bus.clone());
    let company = use_case
        .execute(CreateCompanyDto {
            name: "Test Company".to_owned(),
            country_id: Uuid::new_v4(),
        })
        .instrument(request_span())
        .await
        .unwrap();
    assert_eq!(company.published.len(), 1);
    bus.shutdown(Duration::from_secs(10)).await.unwrap();
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

// --------------------------------------------------------------- stdout

/// The child half of [`stdout_export_is_one_trace_under_the_request`]:
/// `main`'s set-up (the global subscriber, stdout export), the use case,
/// the flush at exit.
#[test]
#[ignore = "run in a child process by stdout_export_is_one_trace_under_the_request"]
fn child_exports_the_use_case_to_stdout() {
    let telemetry = Telemetry::from_lookup(|_| None).unwrap();
    assert_eq!(telemetry.export_to(), &ExportTo::Stdout);
    telemetry.init().unwrap();
    runtime().block_on(create_company_in_a_request());
    telemetry.shutdown().unwrap();
}

/// One span of `opentelemetry-stdout`'s output.
#[derive(Debug)]
struct PrintedSpan {
    name: String,
    trace_id: String,
    span_id: String,
    /// `None` for a root span.
    parent: Option<String>,
    kind: String,
}

/// The spans in the exporter's output (`Span #n` blocks; a span's own
/// fields are indented by one tab, its scope's by two).
fn printed_spans(stdout: &str) -> Vec<PrintedSpan> {
    stdout
        .split("\nSpan #")
        .skip(1)
        .map(|block| {
            let field = |name: &str| {
                block
                    .lines()
                    .find_map(|line| {
                        let rest = line.strip_prefix('\t')?.strip_prefix(name)?;
                        Some(rest.trim_start().strip_prefix(':')?.trim().to_owned())
                    })
                    .unwrap_or_else(|| panic!("no {name} in span block:\n{block}"))
            };
            let parent = field("ParentSpanId");
            PrintedSpan {
                name: field("Name"),
                trace_id: field("TraceId"),
                span_id: field("SpanId"),
                parent: (!parent.starts_with("None")).then_some(parent),
                kind: field("Kind"),
            }
        })
        .collect()
}

/// `cargo run --example company --features otel`'s export: the request
/// span is the root; `publish {event}` (a producer) and `dispatch` are its
/// children; each handler's `handle` is a child of `dispatch`; all of one
/// trace.
#[test]
fn stdout_export_is_one_trace_under_the_request() {
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_exports_the_use_case_to_stdout",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_SERVICE_NAME")
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "child failed: {}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("service.name=String(Static(\"company\"))"),
        "{stdout}"
    );
    let spans = printed_spans(&stdout);
    let one = |name: &str| {
        let found: Vec<&PrintedSpan> = spans.iter().filter(|span| span.name == name).collect();
        assert_eq!(found.len(), 1, "one {name:?} span in {spans:#?}");
        found[0]
    };
    let request = one("POST /companies");
    assert_eq!(request.parent, None, "the request span is the root");
    assert_eq!(request.kind, "Server");

    let publish = one(PUBLISH);
    assert_eq!(publish.kind, "Producer");
    assert_eq!(publish.parent.as_ref(), Some(&request.span_id));

    let dispatch = one("dispatch");
    assert_eq!(dispatch.parent.as_ref(), Some(&request.span_id));

    let handles: Vec<&PrintedSpan> = spans.iter().filter(|s| s.name == "handle").collect();
    assert_eq!(handles.len(), 3, "one handle span per handler: {spans:#?}");
    for handle in &handles {
        assert_eq!(handle.parent.as_ref(), Some(&dispatch.span_id));
    }
    for span in &spans {
        assert_eq!(span.trace_id, request.trace_id, "one trace: {span:?}");
    }
    assert_eq!(spans.len(), 6, "{spans:#?}");
}

// ----------------------------------------------------------------- OTLP

/// A request the receiver got.
struct Received {
    request_line: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

/// An HTTP/1.1 receiver on 127.0.0.1 for one request: answers `200` with
/// an empty body (an empty `ExportTraceServiceResponse`) and hands the
/// request over.
fn otlp_receiver() -> (String, mpsc::Receiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}/", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut reader = BufReader::new(stream);
        let mut request_line = String::new();
        reader.read_line(&mut request_line).unwrap();
        let mut headers = HashMap::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').unwrap();
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
        let length: usize = headers["content-length"].parse().unwrap();
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let mut stream = reader.into_inner();
        stream
            .write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            )
            .unwrap();
        stream.flush().unwrap();
        let _ = tx.send(Received {
            request_line: request_line.trim_end().to_owned(),
            headers,
            body,
        });
    });
    (endpoint, rx)
}

/// `OTEL_EXPORTER_OTLP_ENDPOINT` set: the spans are POSTed to
/// `{endpoint}/v1/traces` as protobuf, at the latest when the provider
/// shuts down.
#[test]
fn otlp_export_posts_protobuf_spans_to_v1_traces() {
    let (endpoint, received) = otlp_receiver();
    let telemetry = Telemetry::from_lookup(|name| {
        (name == "OTEL_EXPORTER_OTLP_ENDPOINT").then(|| endpoint.clone())
    })
    .unwrap();
    let url = format!("{}v1/traces", endpoint);
    assert_eq!(telemetry.export_to(), &ExportTo::Otlp(url));

    let subscriber = tracing_subscriber::registry().with(telemetry.layer());
    tracing::subscriber::with_default(subscriber, || {
        runtime().block_on(create_company_in_a_request());
    });
    telemetry.shutdown().unwrap();

    let request = received
        .recv_timeout(Duration::from_secs(30))
        .expect("no OTLP request within 30 s");
    assert_eq!(request.request_line, "POST /v1/traces HTTP/1.1");
    assert_eq!(
        request.headers.get("content-type").map(String::as_str),
        Some("application/x-protobuf")
    );
    assert!(!request.body.is_empty());
    for name in [PUBLISH, "POST /companies", "dispatch", "handle"] {
        assert!(
            request
                .body
                .windows(name.len())
                .any(|window| window == name.as_bytes()),
            "{name:?} not in the exported spans"
        );
    }
    // The event id travels as the publish span's messaging.message.id.
    assert!(request
        .body
        .windows(b"messaging.message.id".len())
        .any(|window| window == b"messaging.message.id"));
}

/// An `https://` collector is refused up front (the example compiles no
/// TLS for its OTLP client) instead of failing at every export; an empty
/// endpoint means stdout.
#[test]
fn an_https_endpoint_is_refused_and_an_empty_one_means_stdout() {
    let https = Telemetry::from_lookup(|name| {
        (name == "OTEL_EXPORTER_OTLP_ENDPOINT").then(|| "https://collector:4318".to_owned())
    });
    assert!(
        matches!(&https, Err(TelemetryError::UnsupportedEndpoint(url)) if url == "https://collector:4318"),
        "{https:?}"
    );
    let empty =
        Telemetry::from_lookup(|name| (name == "OTEL_EXPORTER_OTLP_ENDPOINT").then(String::new))
            .unwrap();
    assert_eq!(empty.export_to(), &ExportTo::Stdout);
    empty.shutdown().unwrap();
}
