//! Unit tests of the consumer's settings from a lookup and of its shutdown: graceful at the first signal, at once at the second.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::operation::change_message_visibility::ChangeMessageVisibilityOutput;
use aws_sdk_sqs::operation::receive_message::ReceiveMessageOutput;
use aws_sdk_sqs::types::Message;
use aws_sdk_sqs::Client;
use aws_smithy_mocks::{mock, RuleMode};
use events_core::{ConfigError, DomainEvent, Event, EventBus, RawEvent};
use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;

use super::*;

#[derive(DomainEvent, Debug, Clone)]
#[event(
    company = "acme",
    service = "shop",
    version = 1,
    resource = "order",
    action = "shipped"
)]
struct OrderShipped {
    total: u64,
}

/// A lookup of `vars` only.
fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |var| vars.get(var).cloned()
}

fn settings(vars: &[(&str, &str)]) -> Result<ConsumerSettings, ConsumerError> {
    let builder = SqsConsumer::builder_from_lookup(lookup(vars))?;
    // The settings are what the builder holds; its Debug shows them.
    Ok(builder.settings().clone())
}

#[test]
fn the_shutdown_timeout_comes_from_event_bus_shutdown_timeout() {
    assert_eq!(
        settings(&[]).unwrap().shutdown_timeout,
        Duration::from_secs(30)
    );
    assert_eq!(settings(&[]).unwrap(), ConsumerSettings::default());
    let s = settings(&[
        ("EVENT_BUS_SHUTDOWN_TIMEOUT", "5s"),
        ("EVENT_BUS_WAIT_SECONDS", "3"),
        ("EVENT_BUS_VISIBILITY_TIMEOUT", "90"),
    ])
    .unwrap();
    assert_eq!(s.shutdown_timeout, Duration::from_secs(5));
    assert_eq!(s.wait_time, Duration::from_secs(3));
    assert_eq!(s.visibility_timeout, Duration::from_secs(90));
    assert_eq!(
        settings(&[("EVENT_BUS_SHUTDOWN_TIMEOUT", "250ms")])
            .unwrap()
            .shutdown_timeout,
        Duration::from_millis(250)
    );
    match settings(&[("EVENT_BUS_SHUTDOWN_TIMEOUT", "soon")]) {
        Err(ConsumerError::Config(ConfigError { var, value, .. })) => {
            assert_eq!(
                (var, value.as_str()),
                ("EVENT_BUS_SHUTDOWN_TIMEOUT", "soon")
            );
        }
        other => panic!("{other:?}"),
    }
}

/// Durations SQS cannot take (not whole seconds, past its bounds) are
/// refused at build time, naming the variable.
#[tokio::test]
async fn durations_sqs_cannot_take_are_refused() {
    let build = |b: SqsConsumerBuilder| async move {
        b.client(client(&[]))
            .queue_url("https://sqs.us-east-1.amazonaws.com/1/q")
            .check_queue(false)
            .build(bus(Arc::new(Notify::new())))
            .await
    };
    let refused = |r: Result<SqsConsumer, ConsumerError>| match r {
        Err(ConsumerError::Config(e)) => (e.var, e.value),
        other => panic!("{other:?}"),
    };
    let b = || SqsConsumer::builder();
    assert_eq!(
        refused(build(b().wait_time(Duration::from_secs(21))).await),
        ("EVENT_BUS_WAIT_SECONDS", "21".to_owned())
    );
    assert_eq!(
        refused(build(b().visibility_timeout(Duration::from_millis(1500))).await),
        ("EVENT_BUS_VISIBILITY_TIMEOUT", "1.5s".to_owned())
    );
    assert_eq!(
        refused(build(b().visibility_timeout(Duration::ZERO)).await),
        ("EVENT_BUS_VISIBILITY_TIMEOUT", "0".to_owned())
    );
    assert!(build(b().wait_time(Duration::from_secs(20))).await.is_ok());
}

/// A handler that says it started, then never returns.
struct Hangs(Arc<Notify>);

impl events_core::Handler<OrderShipped> for Hangs {
    async fn handle(&self, _: &Event<OrderShipped>) -> events_core::HandlerResult {
        self.0.notify_one();
        std::future::pending().await
    }
}

fn bus(started: Arc<Notify>) -> EventBus {
    EventBus::builder()
        .without_store()
        .discover(false)
        .register_handler_named::<OrderShipped, _>("hangs", Hangs(started))
        .build()
        .unwrap()
}

fn client(rules: &[&aws_smithy_mocks::Rule]) -> Client {
    let mut interceptor =
        aws_smithy_mocks::MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny);
    for rule in rules {
        interceptor = interceptor.with_rule(rule);
    }
    Client::from_conf(
        aws_sdk_sqs::Config::builder()
            .with_test_defaults()
            .region(aws_sdk_sqs::config::Region::new("us-east-1"))
            .http_client(aws_smithy_mocks::create_mock_http_client())
            .interceptor(interceptor)
            .build(),
    )
}

/// A consumer whose queue holds one message, whose handler hangs
/// (`started` is notified when it runs), with a 30 s shutdown timeout.
async fn hung_consumer(started: Arc<Notify>) -> SqsConsumer {
    let raw = RawEvent::from_event(&Event::new(OrderShipped { total: 1 })).unwrap();
    let body = format!(
        r#"{{"version":"0","id":"x","detail-type":"{}","source":"acme.shop","detail":{}}}"#,
        raw.name,
        events_core::wire::encode_detail(&raw)
    );
    let message = Message::builder()
        .message_id("m1")
        .receipt_handle("r1")
        .body(body)
        .build();
    let receive = mock!(Client::receive_message)
        .sequence()
        .output(move || {
            ReceiveMessageOutput::builder()
                .messages(message.clone())
                .build()
        })
        .output(|| ReceiveMessageOutput::builder().build())
        .repeatedly()
        .build();
    let extend = mock!(Client::change_message_visibility)
        .sequence()
        .output(|| ChangeMessageVisibilityOutput::builder().build())
        .repeatedly()
        .build();
    SqsConsumer::builder()
        .client(client(&[&receive, &extend]))
        .queue_url("https://sqs.us-east-1.amazonaws.com/1/q")
        .wait_time(Duration::ZERO)
        .shutdown_timeout(Duration::from_secs(30))
        .check_queue(false)
        .build(bus(started))
        .await
        .unwrap()
}

/// Signals sent on a channel, as the operating system's would come.
fn signals() -> (
    mpsc::UnboundedSender<()>,
    impl futures_util::Stream<Item = ()> + Send + 'static,
) {
    let (tx, rx) = mpsc::unbounded_channel::<()>();
    let stream =
        futures_util::stream::unfold(
            rx,
            |mut rx| async move { rx.recv().await.map(|()| ((), rx)) },
        );
    (tx, stream)
}

/// One signal: a graceful shutdown, which waits the whole shutdown timeout
/// for the hung handler, then abandons its message.
#[tokio::test(start_paused = true)]
async fn one_signal_waits_the_shutdown_timeout_for_in_flight_messages() {
    let started = Arc::new(Notify::new());
    let consumer = hung_consumer(Arc::clone(&started)).await;
    let (tx, signals) = signals();
    let run = tokio::spawn(async move { consumer.run_until_signals(signals).await });
    started.notified().await;
    let signalled = Instant::now();
    tx.send(()).unwrap();
    let report = run.await.unwrap().unwrap();
    assert!(
        signalled.elapsed() >= Duration::from_secs(30),
        "{:?}",
        signalled.elapsed()
    );
    assert_eq!((report.received, report.abandoned), (1, 1), "{report:?}");
    assert_eq!(report.deleted, 0);
}

/// A second signal stops at once: the hung handler's message is abandoned
/// without waiting for the shutdown timeout.
#[tokio::test(start_paused = true)]
async fn a_second_signal_stops_at_once() {
    let started = Arc::new(Notify::new());
    let consumer = hung_consumer(Arc::clone(&started)).await;
    let (tx, signals) = signals();
    let run = tokio::spawn(async move { consumer.run_until_signals(signals).await });
    started.notified().await;
    let signalled = Instant::now();
    tx.send(()).unwrap();
    tx.send(()).unwrap();
    let report = run.await.unwrap().unwrap();
    assert!(
        signalled.elapsed() < Duration::from_secs(30),
        "{:?}",
        signalled.elapsed()
    );
    assert_eq!((report.received, report.abandoned), (1, 1), "{report:?}");
    assert_eq!(report.deleted, 0);
}

/// `run_with_stop`: cancelling `stop_now` during the graceful shutdown ends
/// it at once too.
#[tokio::test(start_paused = true)]
async fn stop_now_ends_a_graceful_shutdown_already_under_way() {
    let started = Arc::new(Notify::new());
    let consumer = hung_consumer(Arc::clone(&started)).await;
    let (shutdown, stop_now) = (CancellationToken::new(), CancellationToken::new());
    let run = tokio::spawn({
        let (shutdown, stop_now) = (shutdown.clone(), stop_now.clone());
        async move { consumer.run_with_stop(shutdown, stop_now).await }
    });
    started.notified().await;
    let signalled = Instant::now();
    shutdown.cancel();
    // Ten seconds into the graceful shutdown (of 30), stop now.
    tokio::time::sleep(Duration::from_secs(10)).await;
    stop_now.cancel();
    let report = run.await.unwrap().unwrap();
    let elapsed = signalled.elapsed();
    assert!(
        elapsed >= Duration::from_secs(10) && elapsed < Duration::from_secs(30),
        "{elapsed:?}"
    );
    assert_eq!(report.abandoned, 1, "{report:?}");
}
