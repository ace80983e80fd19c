//! The Lambda and HTTP adapters. Lambda: payloads shaped as the real SQS and
//! EventBridge invocations (`fixtures/lambda/`), partial batch failures
//! reported by message id. HTTP: the router served on a loopback socket and
//! real HTTP/1.1 requests for every answer, 401 without or with a wrong
//! credential (and no handler run), 413 past the body limit; the credential
//! settings from `EVENT_BUS_HTTP_*`, the start-up warning of an open
//! endpoint and no secret in the logs (captured at every level).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use events_core::{DomainEvent, Event, EventBus, Handler, HandlerResult};
use events_eventbridge::axum;
use events_eventbridge::http::{DispatchRouter, HttpError, DISPATCH_PATH};
use events_eventbridge::lambda::{
    handle_eventbridge_event, handle_sqs_event, EventBridgeEvent, LambdaError, SqsEvent,
};
use events_eventbridge::{MemoryDedup, Processed, Processor};
use events_examples::domain::events::CompanyCreated;
use serde_json::{json, Value};

#[derive(DomainEvent, Debug, Clone)]
#[event(
    company = "testclean",
    service = "billing",
    version = 1,
    resource = "invoice",
    action = "failed"
)]
struct InvoiceFailed {
    invoice: u32,
}

#[derive(Clone, Default)]
struct Count(Arc<AtomicUsize>, bool);

impl<E: DomainEvent> Handler<E> for Count {
    async fn handle(&self, _: &Event<E>) -> HandlerResult {
        self.0.fetch_add(1, Ordering::SeqCst);
        if self.1 {
            return Err("the invoice service is down".into());
        }
        Ok(())
    }
}

/// A processor: `CompanyCreated` handled, `InvoiceFailed` always failing.
fn processor() -> (Processor, Count, Count) {
    let ok = Count::default();
    let failing = Count(Arc::default(), true);
    let bus = EventBus::builder()
        .without_store()
        .discover(false)
        .register_handler_named::<CompanyCreated, _>("handled", ok.clone())
        .register_handler_named::<InvoiceFailed, _>("failing", failing.clone())
        .build()
        .unwrap();
    (
        Processor::new(bus).with_dedup(Arc::new(MemoryDedup::default())),
        ok,
        failing,
    )
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/lambda")
            .join(name),
    )
    .unwrap()
}

#[tokio::test]
async fn lambda_sqs_reports_the_failed_and_undecodable_records_by_message_id() {
    logs();
    let (processor, ok, failing) = processor();
    let event: SqsEvent = serde_json::from_str(&fixture("sqs_event.json")).unwrap();
    let response = handle_sqs_event(&processor, event).await;
    // What Lambda reads back: the failed ones (a handler failed; not an
    // event), not the handled one nor the one with no handler here.
    assert_eq!(
        serde_json::to_value(&response).unwrap(),
        json!({"batchItemFailures": [
            {"itemIdentifier": "2e1424d4-f796-459a-8184-9c92662be6da"},
            {"itemIdentifier": "3c3d4e5f-9d1e-4a6b-8a2c-1f0e9d8c7b6a"},
        ]})
    );
    assert_eq!(ok.0.load(Ordering::SeqCst), 1);
    assert_eq!(failing.0.load(Ordering::SeqCst), 1);

    // The same batch again (Lambda redelivers the failed ones, SQS may
    // deliver the others twice): the handled one is a duplicate.
    let again: SqsEvent = serde_json::from_str(&fixture("sqs_event.json")).unwrap();
    let response = handle_sqs_event(&processor, again).await;
    assert_eq!(response.batch_item_failures.len(), 2);
    assert_eq!(ok.0.load(Ordering::SeqCst), 1, "deduplicated");
}

#[tokio::test]
async fn lambda_eventbridge_direct_events_run_and_report_failures() {
    logs();
    let (processor, ok, _) = processor();
    let event: EventBridgeEvent = serde_json::from_str(&fixture("eventbridge_event.json")).unwrap();
    let done = handle_eventbridge_event(&processor, &event).await.unwrap();
    assert!(
        matches!(&done, Processed::Handled { id, ran: 1, .. } if id == "0b5e7c3a-1111-4f6e-9a51-7c0d0c7d9a01"),
        "{done:?}"
    );
    assert_eq!(ok.0.load(Ordering::SeqCst), 1);
    let duplicate = handle_eventbridge_event(&processor, &event).await.unwrap();
    assert!(
        matches!(duplicate, Processed::Duplicate { .. }),
        "{duplicate:?}"
    );

    let failing: EventBridgeEvent =
        serde_json::from_str(&fixture("eventbridge_event_failing.json")).unwrap();
    let err = handle_eventbridge_event(&processor, &failing)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, LambdaError::HandlersFailed { failures, .. } if failures[0].0 == "failing"),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("the invoice service is down"),
        "{err}"
    );

    let mut broken: Value = serde_json::from_str(&fixture("eventbridge_event.json")).unwrap();
    broken["detail"]["occurred_on"] = json!("yesterday");
    let broken: EventBridgeEvent = serde_json::from_value(broken).unwrap();
    let err = handle_eventbridge_event(&processor, &broken)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("occurred_on"), "{err}");
}

/// Serves `router` on a loopback port.
async fn serve(router: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

/// One HTTP/1.1 request over a real socket; (status, JSON body).
async fn post(addr: SocketAddr, headers: &[(&str, &str)], body: &str) -> (u16, Value) {
    let mut request = format!(
        "POST {DISPATCH_PATH} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        // The server may answer (413, 401) before reading the whole body.
        let _ = stream.write_all(request.as_bytes());
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response);
        let text = String::from_utf8_lossy(&response).into_owned();
        let status: u16 = text[9..12].parse().unwrap();
        let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
        (status, serde_json::from_str(body).unwrap_or(Value::Null))
    })
    .await
    .unwrap()
}

fn company_body() -> String {
    events_aws_tests::consume::envelope_body(&Event::new(CompanyCreated {
        company_id: uuid::Uuid::new_v4(),
        company_name: "Acme".into(),
        country_id: uuid::Uuid::new_v4(),
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_answers_each_status_over_a_socket() {
    logs();
    let (processor, ok, failing) = processor();
    let router = DispatchRouter::new(processor)
        .api_key("X-Events-Key", "s3cret-key")
        .body_limit(4096)
        .build()
        .unwrap();
    let addr = serve(router).await;
    let key = [("X-Events-Key", "s3cret-key")];

    let body = company_body();
    let (status, json) = post(addr, &key, &body).await;
    assert_eq!(
        (status, json["status"].as_str()),
        (200, Some("handled")),
        "{json}"
    );
    assert_eq!(ok.0.load(Ordering::SeqCst), 1);

    let (status, json) = post(addr, &key, &body).await;
    assert_eq!(
        (status, json["status"].as_str()),
        (200, Some("duplicate")),
        "{json}"
    );
    assert_eq!(ok.0.load(Ordering::SeqCst), 1, "a duplicate runs nothing");

    let unrouted = body.replace("company.created", "company.deleted");
    let (status, json) = post(addr, &key, &unrouted).await;
    assert_eq!(
        (status, json["status"].as_str()),
        (200, Some("unrouted")),
        "{json}"
    );

    let (status, json) = post(addr, &key, "{\"detail-type\": 5}").await;
    assert_eq!(status, 400, "{json}");
    assert!(
        json["error"].as_str().unwrap().contains("detail-type"),
        "{json}"
    );

    let invoice =
        events_aws_tests::consume::envelope_body(&Event::new(InvoiceFailed { invoice: 1 }));
    let (status, json) = post(addr, &key, &invoice).await;
    assert_eq!(
        (status, json["failed"].clone()),
        (500, json!(["failing"])),
        "{json}"
    );
    assert_eq!(failing.0.load(Ordering::SeqCst), 1);

    let oversized = format!("{{\"pad\":\"{}\"}}", "x".repeat(5000));
    let (status, _) = post(addr, &key, &oversized).await;
    assert_eq!(status, 413);

    // Missing and wrong credentials: 401, nothing decoded or run.
    let fresh = company_body();
    let (status, _) = post(addr, &[], &fresh).await;
    assert_eq!(status, 401);
    let (status, _) = post(addr, &[("X-Events-Key", "s3cret-kez")], &fresh).await;
    assert_eq!(status, 401);
    let (status, _) = post(addr, &[("X-Events-Key", "s3cret")], &fresh).await;
    assert_eq!(status, 401, "a prefix of the key is wrong");
    let (status, _) = post(addr, &[("X-Other", "s3cret-key")], &fresh).await;
    assert_eq!(status, 401);
    assert_eq!(
        ok.0.load(Ordering::SeqCst),
        1,
        "no handler ran without the credential"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_basic_and_bearer_credentials() {
    logs();
    let (processor, ok, _) = processor();
    let basic = serve(
        DispatchRouter::new(processor.clone())
            .basic("eventbridge", "pw")
            .build()
            .unwrap(),
    )
    .await;
    // base64("eventbridge:pw")
    let (status, _) = post(
        basic,
        &[("Authorization", "Basic ZXZlbnRicmlkZ2U6cHc=")],
        &company_body(),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = post(
        basic,
        &[("Authorization", "Basic ZXZlbnRicmlkZ2U6cHg=")],
        &company_body(),
    )
    .await;
    assert_eq!(status, 401);

    let bearer = serve(
        DispatchRouter::new(processor)
            .bearer("tok-123")
            .build()
            .unwrap(),
    )
    .await;
    let (status, _) = post(
        bearer,
        &[("Authorization", "Bearer tok-123")],
        &company_body(),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = post(
        bearer,
        &[("Authorization", "Bearer tok-124")],
        &company_body(),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(ok.0.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_without_a_credential_needs_the_explicit_opt_in() {
    logs();
    let (processor, ok, _) = processor();
    assert!(matches!(
        DispatchRouter::new(processor.clone()).build(),
        Err(HttpError::NoCredential)
    ));
    assert!(matches!(
        DispatchRouter::new(processor.clone())
            .api_key("x-key", "")
            .build(),
        Err(HttpError::EmptyCredential(_))
    ));
    assert!(matches!(
        DispatchRouter::new(processor.clone())
            .api_key("bad header", "k")
            .build(),
        Err(HttpError::BadHeader(_))
    ));
    let open = serve(
        DispatchRouter::new(processor)
            .allow_unauthenticated()
            .build()
            .unwrap(),
    )
    .await;
    let (status, _) = post(open, &[], &company_body()).await;
    assert_eq!(status, 200);
    assert_eq!(ok.0.load(Ordering::SeqCst), 1);
}

/// The environment of [`DispatchRouter::from_lookup`]: these pairs, nothing else.
fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |var| pairs.iter().find(|(k, _)| k == var).map(|(_, v)| v.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_from_env_requires_each_kind_of_credential_it_reads() {
    logs();
    let (processor, ok, _) = processor();
    // API key, in the default header and in a named one; a body limit.
    let default_header = serve(
        DispatchRouter::from_lookup(
            processor.clone(),
            env_of(&[
                ("EVENT_BUS_HTTP_API_KEY", "k-1"),
                ("EVENT_BUS_HTTP_BODY_LIMIT", "2048"),
                // Empty counts as unset.
                ("EVENT_BUS_HTTP_BEARER_TOKEN", ""),
                ("EVENT_BUS_HTTP_ALLOW_UNAUTHENTICATED", " "),
            ]),
        )
        .unwrap()
        .build()
        .unwrap(),
    )
    .await;
    assert_eq!(post(default_header, &[], &company_body()).await.0, 401);
    assert_eq!(
        post(default_header, &[("x-events-key", "k-2")], &company_body())
            .await
            .0,
        401
    );
    assert_eq!(
        post(default_header, &[("x-events-key", "k-1")], &company_body())
            .await
            .0,
        200
    );
    let oversized = format!("{{\"pad\":\"{}\"}}", "x".repeat(3000));
    assert_eq!(
        post(default_header, &[("x-events-key", "k-1")], &oversized)
            .await
            .0,
        413,
        "EVENT_BUS_HTTP_BODY_LIMIT=2048"
    );
    let named_header = serve(
        DispatchRouter::from_lookup(
            processor.clone(),
            env_of(&[
                ("EVENT_BUS_HTTP_API_KEY", "k-3"),
                ("EVENT_BUS_HTTP_API_KEY_HEADER", "X-Api-Key"),
            ]),
        )
        .unwrap()
        .build()
        .unwrap(),
    )
    .await;
    assert_eq!(
        post(named_header, &[("x-events-key", "k-3")], &company_body())
            .await
            .0,
        401,
        "the key in another header"
    );
    assert_eq!(
        post(named_header, &[("X-Api-Key", "k-3")], &company_body())
            .await
            .0,
        200
    );

    let basic = serve(
        DispatchRouter::from_lookup(
            processor.clone(),
            env_of(&[
                ("EVENT_BUS_HTTP_BASIC_USERNAME", "eventbridge"),
                ("EVENT_BUS_HTTP_BASIC_PASSWORD", "pw"),
            ]),
        )
        .unwrap()
        .build()
        .unwrap(),
    )
    .await;
    // base64("eventbridge:pw"), then base64("eventbridge:px")
    let right = [("Authorization", "Basic ZXZlbnRicmlkZ2U6cHc=")];
    let wrong = [("Authorization", "Basic ZXZlbnRicmlkZ2U6cHg=")];
    assert_eq!(post(basic, &wrong, &company_body()).await.0, 401);
    assert_eq!(post(basic, &right, &company_body()).await.0, 200);

    let bearer = serve(
        DispatchRouter::from_lookup(
            processor.clone(),
            env_of(&[("EVENT_BUS_HTTP_BEARER_TOKEN", "tok-9")]),
        )
        .unwrap()
        .build()
        .unwrap(),
    )
    .await;
    let token = |t: &'static str| [("Authorization", t)];
    assert_eq!(
        post(bearer, &token("Bearer tok-8"), &company_body())
            .await
            .0,
        401
    );
    assert_eq!(
        post(bearer, &token("Bearer tok-9"), &company_body())
            .await
            .0,
        200
    );

    let open = serve(
        DispatchRouter::from_lookup(
            processor,
            env_of(&[("EVENT_BUS_HTTP_ALLOW_UNAUTHENTICATED", "true")]),
        )
        .unwrap()
        .build()
        .unwrap(),
    )
    .await;
    assert_eq!(post(open, &[], &company_body()).await.0, 200);
    assert_eq!(
        ok.0.load(Ordering::SeqCst),
        5,
        "each accepted request ran the handler, no refused one did"
    );
}

#[test]
fn http_from_env_refuses_unusable_settings_naming_the_variable_never_the_secret() {
    logs();
    let (processor, _, _) = processor();
    let error = |pairs: &[(&str, &str)]| match DispatchRouter::from_lookup(
        processor.clone(),
        env_of(pairs),
    )
    .map(|r| r.build())
    {
        Ok(Ok(_)) => panic!("{pairs:?} was accepted"),
        Ok(Err(e)) | Err(e) => e,
    };
    // Nothing set (or only blanks): no credential and no opt-in.
    for pairs in [
        &[][..],
        &[("EVENT_BUS_HTTP_API_KEY", "  ")][..],
        &[("EVENT_BUS_HTTP_ALLOW_UNAUTHENTICATED", "false")][..],
    ] {
        let e = error(pairs);
        assert!(matches!(e, HttpError::NoCredential), "{pairs:?}: {e}");
        assert!(e.to_string().contains("allow_unauthenticated"), "{e}");
    }
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("EVENT_BUS_HTTP_BODY_LIMIT", "64KB"), ("EVENT_BUS_HTTP_API_KEY", "sekrit-1")],
            "EVENT_BUS_HTTP_BODY_LIMIT=`64KB` is not valid: expected a number of bytes from 1 to 16777216 (16 MiB), e.g. `262144`",
        ),
        (
            &[("EVENT_BUS_HTTP_BODY_LIMIT", "0"), ("EVENT_BUS_HTTP_API_KEY", "sekrit-1")],
            "EVENT_BUS_HTTP_BODY_LIMIT=`0` is not valid",
        ),
        (
            &[("EVENT_BUS_HTTP_BODY_LIMIT", "16777217"), ("EVENT_BUS_HTTP_API_KEY", "sekrit-1")],
            "EVENT_BUS_HTTP_BODY_LIMIT=`16777217` is not valid",
        ),
        (
            &[("EVENT_BUS_HTTP_ALLOW_UNAUTHENTICATED", "si")],
            "EVENT_BUS_HTTP_ALLOW_UNAUTHENTICATED=`si` is not valid: expected `true` or `false`",
        ),
        (
            &[("EVENT_BUS_HTTP_API_KEY", "sekrit-1"), ("EVENT_BUS_HTTP_API_KEY_HEADER", "x events key")],
            "EVENT_BUS_HTTP_API_KEY_HEADER=`x events key` is not valid: expected an HTTP header name",
        ),
        (
            &[("EVENT_BUS_HTTP_API_KEY_HEADER", "x-key")],
            "EVENT_BUS_HTTP_API_KEY_HEADER=`x-key` is not valid: expected EVENT_BUS_HTTP_API_KEY set too",
        ),
        (
            &[("EVENT_BUS_HTTP_BASIC_USERNAME", "eventbridge")],
            "EVENT_BUS_HTTP_BASIC_USERNAME=`eventbridge` is not valid: expected EVENT_BUS_HTTP_BASIC_PASSWORD set too",
        ),
        (
            &[("EVENT_BUS_HTTP_BASIC_PASSWORD", "sekrit-2")],
            "EVENT_BUS_HTTP_BASIC_PASSWORD=`(secret, not shown)` is not valid: expected EVENT_BUS_HTTP_BASIC_USERNAME set too",
        ),
        (
            &[("EVENT_BUS_HTTP_API_KEY", "sekrit-1"), ("EVENT_BUS_HTTP_BEARER_TOKEN", "sekrit-3")],
            "`EVENT_BUS_HTTP_API_KEY, EVENT_BUS_HTTP_BEARER_TOKEN` is not valid: expected one credential",
        ),
        (
            &[
                ("EVENT_BUS_HTTP_BASIC_USERNAME", "eventbridge"),
                ("EVENT_BUS_HTTP_BASIC_PASSWORD", "sekrit-2"),
                ("EVENT_BUS_HTTP_BEARER_TOKEN", "sekrit-3"),
            ],
            "`EVENT_BUS_HTTP_BASIC_USERNAME/PASSWORD, EVENT_BUS_HTTP_BEARER_TOKEN` is not valid",
        ),
        (
            &[("EVENT_BUS_HTTP_BEARER_TOKEN", "sekrit-3"), ("EVENT_BUS_HTTP_ALLOW_UNAUTHENTICATED", "yes")],
            "EVENT_BUS_HTTP_ALLOW_UNAUTHENTICATED=`yes` is not valid: expected `false` or unset when a credential is set",
        ),
    ];
    for (pairs, expected) in cases {
        let e = error(pairs);
        let text = e.to_string();
        assert!(matches!(e, HttpError::Config(_)), "{pairs:?}: {text}");
        assert!(
            text.contains(expected),
            "{pairs:?}:\n  {text}\nlacks\n  {expected}"
        );
        assert!(!text.contains("sekrit"), "a secret in the error: {text}");
        assert!(
            !format!("{e:?}").contains("sekrit"),
            "a secret in the error: {e:?}"
        );
    }
}

#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

/// Every log of this test binary, at every level: a global subscriber that
/// each test installs first thing. (Not a scoped one: tracing caches a
/// callsite's interest globally, and a callsite first hit on another test's
/// thread would stay off for a thread-local subscriber.)
fn logs() -> &'static Captured {
    static LOGS: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        captured
    })
}

const OPEN_WARNING: &str = "the dispatch endpoint runs WITHOUT a credential check";

#[test]
fn http_without_a_credential_logs_a_warning_at_start_up() {
    let logs = logs();
    let (processor, _, _) = processor();
    for (how, router) in [
        (
            "open_by_builder",
            DispatchRouter::new(processor.clone()).allow_unauthenticated(),
        ),
        (
            "open_by_env",
            DispatchRouter::from_lookup(
                processor.clone(),
                env_of(&[("EVENT_BUS_HTTP_ALLOW_UNAUTHENTICATED", "true")]),
            )
            .unwrap(),
        ),
    ] {
        // The span names this start-up's lines among the other tests' logs.
        let built = tracing::info_span!("start_up", how).in_scope(|| router.build());
        assert!(built.is_ok(), "{how}");
        let log = logs.text();
        let line = log
            .lines()
            .find(|l| l.contains(&format!("start_up{{how=\"{how}\"}}")) && l.contains(OPEN_WARNING))
            .unwrap_or_else(|| panic!("{how}: no warning in\n{log}"));
        assert!(line.contains(" WARN "), "{how}: {line}");
        assert!(line.contains("/events-bus/dispatch"), "{how}: {line}");
    }

    // With a credential, no such warning.
    let _router = tracing::info_span!("start_up", how = "with_a_key").in_scope(|| {
        DispatchRouter::new(processor.clone())
            .api_key("x-events-key", "k")
            .build()
            .unwrap()
    });
    let log = logs.text();
    assert!(
        !log.lines()
            .any(|l| l.contains("start_up{how=\"with_a_key\"}") && l.contains(OPEN_WARNING)),
        "{log}"
    );

    // Without the opt-in and without a credential, there is no router.
    assert!(matches!(
        DispatchRouter::new(processor.clone()).build(),
        Err(HttpError::NoCredential)
    ));
    assert!(
        matches!(
            DispatchRouter::from_lookup(processor, env_of(&[])).and_then(DispatchRouter::build),
            Err(HttpError::NoCredential)
        ),
        "from_env without any EVENT_BUS_HTTP_* credential"
    );
}

/// With a credential, neither the start-up nor a refused or an accepted
/// request logs the secret, at any level.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_with_a_credential_never_logs_it() {
    let logs = logs();
    let (processor, ok, _) = processor();
    let router = DispatchRouter::from_lookup(
        processor,
        env_of(&[("EVENT_BUS_HTTP_API_KEY", "hush-key-77")]),
    )
    .unwrap();
    assert!(!format!("{router:?}").contains("hush"), "{router:?}");
    let addr = serve(router.build().unwrap()).await;
    let key = [("x-events-key", "hush-key-77")];
    assert_eq!(post(addr, &key, &company_body()).await.0, 200);
    assert_eq!(
        post(addr, &[("x-events-key", "hush-key-78")], &company_body())
            .await
            .0,
        401
    );
    assert_eq!(ok.0.load(Ordering::SeqCst), 1);
    let log = logs.text();
    assert!(
        log.contains("dispatch refused: missing or wrong credential"),
        "the refusal is logged: {log}"
    );
    assert!(
        log.contains("handler succeeded"),
        "TRACE and DEBUG are captured: {log}"
    );
    assert!(!log.contains("hush-key"), "a secret in the logs:\n{log}");
}
