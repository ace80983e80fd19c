//! Failing and hanging handlers behind the consumers' shared processor, the
//! HTTP adapter (a real socket) and the Lambda adapter, logged as
//! production logs them (`RUST_LOG=warn`: a warn-level subscriber): the
//! failure's line names the event, its id and the handler; a handler that
//! never returns fails at the handler timeout (500 over HTTP, a batch item
//! failure for Lambda); and neither adapter talks of a queue it does not
//! have.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use events_core::{Event, EventBus, Handler, HandlerResult};
use events_eventbridge::http::{serve, DispatchRouter, HttpServerSettings, DISPATCH_PATH};
use events_eventbridge::lambda::{handle_sqs_event, SqsEvent};
use events_eventbridge::{Processed, Processor};
use events_examples::domain::events::CompanyCreated;
use serde_json::json;

struct Fails;

impl Handler<CompanyCreated> for Fails {
    async fn handle(&self, _: &Event<CompanyCreated>) -> HandlerResult {
        Err("the CRM is down".into())
    }
}

struct Hangs;

impl Handler<CompanyCreated> for Hangs {
    async fn handle(&self, _: &Event<CompanyCreated>) -> HandlerResult {
        std::future::pending::<()>().await;
        Ok(())
    }
}

fn processor<H: Handler<CompanyCreated>>(name: &str, handler: H, timeout: Duration) -> Processor {
    let bus = EventBus::builder()
        .without_store()
        .discover(false)
        .handler_timeout(timeout)
        .register_handler_named::<CompanyCreated, _>(name.to_owned(), handler)
        .build()
        .unwrap();
    Processor::new(bus)
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
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

/// This binary's logs at WARN and above (a global subscriber: tracing
/// caches callsite interest globally).
fn warn_logs() -> String {
    static LOGS: OnceLock<Captured> = OnceLock::new();
    let logs = LOGS.get_or_init(|| {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        captured
    });
    let bytes = logs.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn event() -> Event<CompanyCreated> {
    Event::new(CompanyCreated {
        company_id: uuid::Uuid::new_v4(),
        company_name: "Acme".into(),
        country_id: uuid::Uuid::new_v4(),
    })
}

/// The lines naming `id` and `handler`.
fn lines_of(id: &str, handler: &str) -> Vec<String> {
    warn_logs()
        .lines()
        .filter(|l| l.contains(id) && l.contains(&format!("handler={handler}")))
        .map(str::to_owned)
        .collect()
}

async fn serve_open(processor: Processor) -> SocketAddr {
    let router = DispatchRouter::new(processor)
        .api_key("x-events-key", "k")
        .build()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, router, HttpServerSettings::default()));
    addr
}

async fn post(addr: SocketAddr, body: String) -> (u16, serde_json::Value) {
    let request = format!(
        "POST {DISPATCH_PATH} HTTP/1.1\r\nHost: {addr}\r\nx-events-key: k\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).unwrap();
        let text = String::from_utf8_lossy(&response).into_owned();
        let status = text[9..12].parse().unwrap();
        let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
        (status, serde_json::from_str(body).unwrap_or_default())
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_a_failed_handler_s_line_names_event_id_and_handler_at_warn() {
    warn_logs();
    let addr = serve_open(processor("http_fails", Fails, Duration::from_secs(60))).await;
    let event = event();
    let (status, body) = post(addr, events_aws_tests::consume::envelope_body(&event)).await;
    assert_eq!(status, 500, "{body}");
    let id = event.id().as_str();
    let lines = lines_of(id, "http_fails");
    assert!(
        lines.iter().any(|l| l.contains("handler failed")
            && l.contains("event=testclean.api.1.event.company.created")
            && l.contains("the CRM is down")),
        "no line with event, id and handler:\n{}",
        warn_logs()
    );
    for line in &lines {
        assert!(!line.contains("queue"), "queue words in HTTP: {line}");
    }
}

/// Real sockets need real time: a short handler timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_a_handler_that_never_returns_is_a_500_at_the_handler_timeout() {
    warn_logs();
    let addr = serve_open(processor("http_hangs", Hangs, Duration::from_millis(200))).await;
    let event = event();
    let (status, body) = post(addr, events_aws_tests::consume::envelope_body(&event)).await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["failed"], json!(["http_hangs"]), "{body}");
    assert!(
        lines_of(event.id().as_str(), "http_hangs")
            .iter()
            .any(|l| l.contains("timed out after 200ms")),
        "{}",
        warn_logs()
    );
}

#[tokio::test(start_paused = true)]
async fn lambda_a_hung_record_is_a_batch_item_failure_at_the_timeout() {
    warn_logs();
    let processor = processor("lambda_hangs", Hangs, Duration::from_secs(30));
    let event = event();
    let sqs: SqsEvent = serde_json::from_value(json!({"Records": [{
        "messageId": "m-1",
        "body": events_aws_tests::consume::envelope_body(&event),
        "eventSource": "aws:sqs",
    }]}))
    .unwrap();
    let start = tokio::time::Instant::now();
    let response = handle_sqs_event(&processor, sqs).await;
    assert_eq!(start.elapsed(), Duration::from_secs(30));
    assert_eq!(
        serde_json::to_value(&response).unwrap(),
        json!({"batchItemFailures": [{"itemIdentifier": "m-1"}]})
    );
    let lines = lines_of(event.id().as_str(), "lambda_hangs");
    assert!(
        lines.iter().any(|l| l.contains("timed out after 30s")),
        "{}",
        warn_logs()
    );
    for line in &lines {
        assert!(!line.contains("queue"), "{line}");
    }
    // What the SQS consumer gets from the same processor: failed, so the
    // message is not deleted and goes back to the queue for redrive.
    let again = processor
        .process(&events_aws_tests::consume::envelope_body(&event))
        .await;
    assert!(matches!(again, Processed::Failed { .. }), "{again:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_body_is_logged_without_queue_words() {
    warn_logs();
    let addr = serve_open(processor("unused", Fails, Duration::from_secs(60))).await;
    let (status, _) = post(addr, "{\"detail-type\": 3, \"marker-9f2\": 1}".to_owned()).await;
    assert_eq!(status, 400);
    let log = warn_logs();
    let line = log
        .lines()
        .find(|l| l.contains("message is not an event"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(!line.contains("queue"), "{line}");
}
