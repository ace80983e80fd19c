//! Unit tests of the SQS consumer, against a scripted SQS (`aws-smithy-mocks`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_sdk_sqs::operation::delete_message_batch::DeleteMessageBatchOutput;
use aws_sdk_sqs::operation::receive_message::ReceiveMessageOutput;
use aws_sdk_sqs::types::{BatchResultErrorEntry, DeleteMessageBatchResultEntry};
use aws_smithy_mocks::{mock, RuleMode};
use events_core::{DomainEvent, Event, RawEvent};

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::types::Message;
use aws_sdk_sqs::Client;
use events_core::EventBus;

use super::builder::config_error;
use super::*;
use crate::dedup::Dedup;

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

fn body(total: u64) -> String {
    let raw = RawEvent::from_event(&Event::new(OrderPlaced { total })).unwrap();
    format!(
        r#"{{"version":"0","id":"x","detail-type":"{}","source":"acme.shop","detail":{}}}"#,
        raw.name,
        events_core::wire::encode_detail(&raw)
    )
}

/// A `Failed` entry of DeleteMessageBatch (which moto never returns) is
/// counted and logged; the other entries of the batch are deleted.
#[tokio::test]
async fn a_failed_entry_of_delete_message_batch_is_counted_not_taken_as_deleted() {
    let messages: Vec<Message> = (0..3)
        .map(|i| {
            Message::builder()
                .message_id(format!("m{i}"))
                .receipt_handle(format!("r{i}"))
                .body(body(i))
                .build()
        })
        .collect();
    let receive = mock!(Client::receive_message)
        .sequence()
        .output(move || {
            ReceiveMessageOutput::builder()
                .set_messages(Some(messages.clone()))
                .build()
        })
        .output(|| ReceiveMessageOutput::builder().build())
        .repeatedly()
        .build();
    let delete = mock!(Client::delete_message_batch).then_compute_output(|input| {
        let mut out = DeleteMessageBatchOutput::builder()
            .set_failed(Some(Vec::new()))
            .set_successful(Some(Vec::new()));
        for entry in input.entries() {
            if entry.receipt_handle() == "r1" {
                out = out.failed(
                    BatchResultErrorEntry::builder()
                        .id(entry.id())
                        .code("ReceiptHandleIsInvalid")
                        .sender_fault(true)
                        .build()
                        .unwrap(),
                );
            } else {
                out = out.successful(
                    DeleteMessageBatchResultEntry::builder()
                        .id(entry.id())
                        .build()
                        .unwrap(),
                );
            }
        }
        out.build().unwrap()
    });
    let client = Client::from_conf(
        aws_sdk_sqs::Config::builder()
            .with_test_defaults()
            .http_client(aws_smithy_mocks::create_mock_http_client())
            .interceptor(
                aws_smithy_mocks::MockResponseInterceptor::new()
                    .rule_mode(RuleMode::MatchAny)
                    .with_rule(&receive)
                    .with_rule(&delete),
            )
            .build(),
    );
    let bus = EventBus::builder()
        .without_store()
        .discover(false)
        .register_handler_named::<OrderPlaced, _>("ok", Succeeds)
        .build()
        .unwrap();
    let consumer = SqsConsumer::builder()
        .client(client)
        .queue_url("https://sqs.us-east-1.amazonaws.com/1/q")
        .wait_seconds(0)
        .check_queue(false)
        .build(bus)
        .await
        .unwrap();
    let token = CancellationToken::new();
    let task = tokio::spawn({
        let consumer = consumer.clone();
        let token = token.clone();
        async move { consumer.run(token).await }
    });
    for _ in 0..500 {
        let r = consumer.report();
        if r.deleted + r.delete_failed >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    token.cancel();
    let report = task.await.unwrap().unwrap();
    assert_eq!((report.received, report.handled), (3, 3));
    assert_eq!((report.deleted, report.delete_failed), (2, 1));
}

/// A client answering with `rules` (any order).
fn mock_client(rules: &[&aws_smithy_mocks::Rule]) -> Client {
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

fn message(id: &str, receipt: &str, body: &str) -> Message {
    Message::builder()
        .message_id(id)
        .receipt_handle(receipt)
        .body(body)
        .build()
}

/// Runs a consumer of `bus` on `client` until `deleted + delete_failed`
/// reaches `done`, then shuts it down.
async fn consume_until(
    client: Client,
    bus: EventBus,
    dedup: Option<Arc<dyn Dedup>>,
    done: u64,
) -> ConsumeReport {
    let mut builder = SqsConsumer::builder()
        .client(client)
        .queue_url("https://sqs.us-east-1.amazonaws.com/1/q")
        .wait_seconds(0)
        .check_queue(false);
    if let Some(dedup) = dedup {
        builder = builder.dedup(dedup);
    }
    let consumer = builder.build(bus).await.unwrap();
    let token = CancellationToken::new();
    let task = tokio::spawn({
        let consumer = consumer.clone();
        let token = token.clone();
        async move { consumer.run(token).await }
    });
    for _ in 0..1000 {
        let r = consumer.report();
        if r.deleted + r.delete_failed >= done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    token.cancel();
    task.await.unwrap().unwrap()
}

type Sends = Arc<std::sync::Mutex<Vec<Vec<String>>>>;

/// A DeleteMessageBatch rule recording each call's receipt handles and
/// failing an entry when `refuse(receipt, earlier sends of it)` gives
/// `Some(sender_fault)`.
fn delete_rule(
    sends: &Sends,
    refuse: impl Fn(&str, usize) -> Option<bool> + Send + Sync + 'static,
) -> aws_smithy_mocks::Rule {
    let sends = Arc::clone(sends);
    mock!(Client::delete_message_batch).then_compute_output(move |input| {
        let mut sends = sends.lock().unwrap();
        let mut out = DeleteMessageBatchOutput::builder()
            .set_failed(Some(Vec::new()))
            .set_successful(Some(Vec::new()));
        for entry in input.entries() {
            let receipt = entry.receipt_handle();
            let before = sends.iter().flatten().filter(|r| *r == receipt).count();
            out = match refuse(receipt, before) {
                Some(sender_fault) => out.failed(
                    BatchResultErrorEntry::builder()
                        .id(entry.id())
                        .code(if sender_fault {
                            "ReceiptHandleIsInvalid"
                        } else {
                            "InternalError"
                        })
                        .sender_fault(sender_fault)
                        .build()
                        .unwrap(),
                ),
                None => out.successful(
                    DeleteMessageBatchResultEntry::builder()
                        .id(entry.id())
                        .build()
                        .unwrap(),
                ),
            };
        }
        sends.push(
            input
                .entries()
                .iter()
                .map(|e| e.receipt_handle().to_owned())
                .collect(),
        );
        out.build().unwrap()
    })
}

fn sends_of(sends: &Sends, receipt: &str) -> usize {
    sends
        .lock()
        .unwrap()
        .iter()
        .flatten()
        .filter(|r| *r == receipt)
        .count()
}

/// An entry SQS failed on its side (`SenderFault: false`) is sent again
/// and deleted; a sender-fault one (`ReceiptHandleIsInvalid`) is not sent
/// again, and is counted.
#[tokio::test]
async fn a_delete_refused_on_the_server_side_is_sent_again_and_deleted() {
    let (b0, b1, b2) = (body(0), body(1), body(2));
    let receive = mock!(Client::receive_message)
        .sequence()
        .output(move || {
            ReceiveMessageOutput::builder()
                .messages(message("m0", "r0", &b0))
                .messages(message("m1", "r1", &b1))
                .messages(message("m2", "r2", &b2))
                .build()
        })
        .output(|| ReceiveMessageOutput::builder().build())
        .repeatedly()
        .build();
    let sends = Sends::default();
    let delete = delete_rule(&sends, |receipt, before| match receipt {
        "r1" if before == 0 => Some(false),
        "r2" => Some(true),
        _ => None,
    });
    let bus = EventBus::builder()
        .without_store()
        .discover(false)
        .register_handler_named::<OrderPlaced, _>("ok", Succeeds)
        .build()
        .unwrap();
    let report = consume_until(mock_client(&[&receive, &delete]), bus, None, 3).await;
    assert_eq!((report.received, report.handled), (3, 3), "{report:?}");
    assert_eq!((report.deleted, report.delete_failed), (2, 1), "{report:?}");
    assert_eq!(
        (
            sends_of(&sends, "r0"),
            sends_of(&sends, "r1"),
            sends_of(&sends, "r2")
        ),
        (1, 2, 1),
        "{sends:?}"
    );
}

/// An entry refused on every send is counted after 4 sends; SQS
/// delivering the message again (a new receipt handle), deduplication
/// skips the handler that succeeded and the duplicate is deleted.
#[tokio::test]
async fn a_delete_refused_on_every_send_is_counted_and_its_redelivery_is_a_duplicate() {
    let (b0, b1) = (body(0), body(1));
    let sends = Sends::default();
    let delete = delete_rule(&sends, |receipt, _| (receipt == "r1").then_some(false));
    // SQS delivers m1 again (a new receipt handle) once its visibility
    // timeout passes, here: after its first delete was refused.
    let receives = std::sync::atomic::AtomicUsize::new(0);
    let receive = mock!(Client::receive_message).then_compute_output({
        let sends = Arc::clone(&sends);
        move |_| {
            let mut out = ReceiveMessageOutput::builder();
            if receives.load(Ordering::SeqCst) == 0 {
                receives.store(1, Ordering::SeqCst);
                out = out
                    .messages(message("m0", "r0", &b0))
                    .messages(message("m1", "r1", &b1));
            } else if receives.load(Ordering::SeqCst) == 1 && sends_of(&sends, "r1") > 0 {
                receives.store(2, Ordering::SeqCst);
                out = out.messages(message("m1", "r1-again", &b1));
            }
            out.build()
        }
    });
    let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let bus = EventBus::builder()
        .without_store()
        .discover(false)
        .register_handler_named::<OrderPlaced, _>("counted", Counted(Arc::clone(&runs)))
        .build()
        .unwrap();
    let dedup: Arc<dyn Dedup> = Arc::new(crate::dedup::MemoryDedup::default());
    let report = consume_until(mock_client(&[&receive, &delete]), bus, Some(dedup), 3).await;
    assert_eq!(sends_of(&sends, "r1"), 4, "{sends:?}");
    assert_eq!(
        (report.received, report.handled, report.duplicates),
        (3, 2, 1),
        "{report:?}"
    );
    assert_eq!((report.deleted, report.delete_failed), (2, 1), "{report:?}");
    assert_eq!(sends_of(&sends, "r1-again"), 1);
    assert_eq!(runs.load(Ordering::SeqCst), 2, "m0 once, m1 once");
}

/// A DeleteMessageBatch call that fails (after the SDK's retries) is
/// made again.
#[tokio::test]
async fn a_failed_delete_call_is_made_again() {
    let b0 = body(0);
    let receive = mock!(Client::receive_message)
        .sequence()
        .output(move || {
            ReceiveMessageOutput::builder()
                .messages(message("m0", "r0", &b0))
                .build()
        })
        .output(|| ReceiveMessageOutput::builder().build())
        .repeatedly()
        .build();
    let delete = mock!(Client::delete_message_batch)
        .sequence()
        .http_status(
            400,
            Some(
                r#"{"__type":"com.amazonaws.sqs#QueueDoesNotExist","message":"gone for a moment"}"#
                    .to_owned(),
            ),
        )
        .output(|| {
            DeleteMessageBatchOutput::builder()
                .set_failed(Some(Vec::new()))
                .successful(
                    DeleteMessageBatchResultEntry::builder()
                        .id("0")
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap()
        })
        .build();
    let bus = EventBus::builder()
        .without_store()
        .discover(false)
        .register_handler_named::<OrderPlaced, _>("ok", Succeeds)
        .build()
        .unwrap();
    let report = consume_until(mock_client(&[&receive, &delete]), bus, None, 1).await;
    assert_eq!((report.deleted, report.delete_failed), (1, 0), "{report:?}");
    assert_eq!(delete.num_calls(), 2);
}

fn bus() -> EventBus {
    EventBus::builder()
        .without_store()
        .discover(false)
        .register_handler_named::<OrderPlaced, _>("ok", Succeeds)
        .build()
        .unwrap()
}

/// A ReceiveMessage answer with HTTP 400 and the service error `code`.
fn refused(code: &str) -> (u16, Option<String>) {
    (
        400,
        Some(format!(
            r#"{{"__type":"com.amazonaws.sqs#{code}","message":"refused: {code}"}}"#
        )),
    )
}

/// Runs a consumer (no start-up check) of `client` until it stops by
/// itself, or for at most `limit` of (paused) time.
async fn run_alone(client: Client, limit: Duration) -> Result<ConsumeReport, ConsumerError> {
    let consumer = SqsConsumer::builder()
        .client(client)
        .queue_url("https://sqs.us-east-1.amazonaws.com/1/q")
        .wait_seconds(0)
        .check_queue(false)
        .build(bus())
        .await
        .unwrap();
    let token = CancellationToken::new();
    let stopper = {
        let token = token.clone();
        tokio::spawn(async move {
            tokio::time::sleep(limit).await;
            token.cancel();
        })
    };
    let result = consumer.run(token).await;
    stopper.abort();
    result
}

/// Without a region the consumer is refused at build time, as the
/// publisher is; no call is made.
#[tokio::test]
async fn an_aws_configuration_without_a_region_is_refused() {
    let config = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .build();
    let err = SqsConsumer::builder()
        .sdk_config(&config)
        .queue_url("https://sqs.us-east-1.amazonaws.com/1/q")
        .build(bus())
        .await
        .unwrap_err();
    assert!(matches!(err, ConsumerError::NoRegion), "{err:?}");
    assert_eq!(
        format!("{err:?}"),
        "the SQS consumer needs an AWS region: set AWS_REGION (e.g. `eu-west-1`), \
         or a region in the AWS profile (AWS_PROFILE, ~/.aws/config)"
    );
}

/// `main() -> Result<(), Box<dyn Error>>` prints the `Debug`: the
/// sentence, not `Config(..)`.
#[test]
fn debug_is_the_message() {
    let err = ConsumerError::from(config_error("EVENT_BUS_WAIT_SECONDS", 60, "0 to 20"));
    assert_eq!(
        format!("{err:?}"),
        "EVENT_BUS_WAIT_SECONDS=`60` is not valid: expected 0 to 20"
    );
    let err: Box<dyn std::error::Error> = Box::new(ConsumerError::Stopped {
        queue_url: "https://q".to_owned(),
        reason: "because".to_owned(),
    });
    assert_eq!(
        format!("{err:?}"),
        "stopped consuming SQS queue `https://q`: because"
    );
}

/// An unset queue URL says so; a queue name or ARN is not a URL.
#[tokio::test]
async fn a_missing_or_malformed_queue_url_is_refused_saying_which() {
    let err = SqsConsumer::builder()
        .client(mock_client(&[]))
        .queue_url("  ")
        .build(bus())
        .await
        .unwrap_err();
    assert_eq!(
        format!("{err:?}"),
        "EVENT_BUS_QUEUE_URL is not set: expected the URL of the SQS queue to consume, \
         e.g. `https://sqs.eu-west-1.amazonaws.com/123456789012/orders` (not its name or ARN)"
    );
    let err = SqsConsumer::builder()
        .client(mock_client(&[]))
        .build(bus())
        .await
        .unwrap_err();
    assert!(matches!(err, ConsumerError::NoQueueUrl), "{err:?}");
    let err = SqsConsumer::builder()
        .client(mock_client(&[]))
        .queue_url("arn:aws:sqs:eu-west-1:123456789012:orders")
        .build(bus())
        .await
        .unwrap_err();
    assert!(
        format!("{err:?}").starts_with(
            "EVENT_BUS_QUEUE_URL=`arn:aws:sqs:eu-west-1:123456789012:orders` is not valid: \
             expected the URL of the SQS queue to consume"
        ),
        "{err:?}"
    );
}

/// AccessDenied on every receive: logged at error level, and after
/// `PERMANENT_ERRORS_BEFORE_STOP` in a row `run` stops saying why. A
/// receive that succeeds in between starts the count again.
#[tokio::test(start_paused = true)]
async fn receive_refused_with_access_denied_stops_the_consumer_after_a_bound() {
    let (status, body) = refused("AccessDenied");
    let mut rule = mock!(Client::receive_message).sequence();
    for _ in 0..PERMANENT_ERRORS_BEFORE_STOP - 1 {
        rule = rule.http_status(status, body.clone());
    }
    let receive = rule
        .output(|| ReceiveMessageOutput::builder().build())
        .http_status(status, body)
        .repeatedly()
        .build();
    let err = run_alone(mock_client(&[&receive]), Duration::from_secs(3600))
        .await
        .unwrap_err();
    let text = format!("{err:?}");
    assert!(matches!(err, ConsumerError::Stopped { .. }), "{text}");
    assert!(
        text.starts_with(
            "stopped consuming SQS queue `https://sqs.us-east-1.amazonaws.com/1/q`: \
             ReceiveMessage failed 10 times in a row"
        ),
        "{text}"
    );
    assert!(
        text.contains("AccessDenied: refused: AccessDenied"),
        "{text}"
    );
    assert!(
        !text.contains("ServiceError {"),
        "no SDK Debug tree: {text}"
    );
    assert_eq!(
        receive.num_calls(),
        2 * PERMANENT_ERRORS_BEFORE_STOP as usize,
        "9 refused, 1 received (the count starts again), 10 refused"
    );
}

/// QueueDoesNotExist stops it at the first receive.
#[tokio::test(start_paused = true)]
async fn receive_of_a_queue_that_does_not_exist_stops_the_consumer_at_once() {
    let (status, body) = refused("QueueDoesNotExist");
    let receive = mock!(Client::receive_message)
        .sequence()
        .http_status(status, body)
        .repeatedly()
        .build();
    let err = run_alone(mock_client(&[&receive]), Duration::from_secs(3600))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("QueueDoesNotExist"), "{text}");
    assert!(text.contains("the queue does not exist"), "{text}");
    assert_eq!(receive.num_calls(), 1);
}

/// An error that may pass (here `OverLimit`) is retried for as long as
/// it takes: the consumer only stops when told to.
#[tokio::test(start_paused = true)]
async fn a_receive_error_that_may_pass_is_retried_without_stopping() {
    let (status, body) = refused("OverLimit");
    let receive = mock!(Client::receive_message)
        .sequence()
        .http_status(status, body)
        .repeatedly()
        .build();
    let report = run_alone(mock_client(&[&receive]), Duration::from_secs(600))
        .await
        .unwrap();
    assert!(
        report.receive_errors > u64::from(PERMANENT_ERRORS_BEFORE_STOP),
        "{report:?}"
    );
}

/// A client with no region (given as is, so `build` cannot refuse it):
/// every receive fails before it is sent, and the consumer stops naming
/// the region.
#[tokio::test(start_paused = true)]
async fn a_client_without_a_region_stops_the_consumer_naming_it() {
    let client = Client::from_conf(
        aws_sdk_sqs::Config::builder()
            .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
            .credentials_provider(aws_sdk_sqs::config::Credentials::for_tests())
            .http_client(aws_smithy_mocks::create_mock_http_client())
            .build(),
    );
    let err = run_alone(client, Duration::from_secs(3600))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("10 times in a row"), "{text}");
    assert!(text.to_ascii_lowercase().contains("region"), "{text}");
}

struct Counted(Arc<std::sync::atomic::AtomicUsize>);

impl events_core::Handler<OrderPlaced> for Counted {
    async fn handle(&self, _: &Event<OrderPlaced>) -> events_core::HandlerResult {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

struct Succeeds;

impl events_core::Handler<OrderPlaced> for Succeeds {
    async fn handle(&self, _: &Event<OrderPlaced>) -> events_core::HandlerResult {
        Ok(())
    }
}
