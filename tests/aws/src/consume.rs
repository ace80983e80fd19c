//! Helpers of the consuming tests: queues with a DLQ, messages shaped as
//! EventBridge delivers them, queue counts.

use std::collections::HashMap;

use aws_sdk_sqs::types::{QueueAttributeName, SendMessageBatchRequestEntry};
use events_core::{wire, DomainEvent, Event, RawEvent};

use crate::moto::Moto;

/// The SQS body an EventBridge rule delivers for `event`: the envelope.
pub fn envelope_body<E: DomainEvent>(event: &Event<E>) -> String {
    let raw = RawEvent::from_event(event).expect("encode the event");
    raw_envelope_body(&raw)
}

/// The envelope of a raw event.
pub fn raw_envelope_body(raw: &RawEvent) -> String {
    let detail: serde_json::Value =
        serde_json::from_str(&wire::encode_detail(raw)).expect("detail is JSON");
    serde_json::json!({
        "version": "0",
        "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": raw.name,
        "source": wire::source_of(raw, None),
        "account": "123456789012",
        "time": "2026-11-27T10:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    })
    .to_string()
}

/// A queue and its dead-letter queue.
#[derive(Debug, Clone)]
pub struct QueueWithDlq {
    /// The queue consumed.
    pub queue_url: String,
    /// Where the redrive policy moves messages received `max_receives` times.
    pub dlq_url: String,
}

async fn arn(moto: &Moto, url: &str) -> String {
    moto.sqs()
        .await
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("queue attributes")
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .expect("queue arn")
}

/// Creates queue `name` (visibility timeout `visibility` seconds) and, with
/// `max_receives`, its DLQ `{name}-dlq` with that `maxReceiveCount`.
pub async fn queue(
    moto: &Moto,
    name: &str,
    visibility: u32,
    max_receives: Option<u32>,
) -> QueueWithDlq {
    let sqs = moto.sqs().await;
    let mut dlq_url = String::new();
    let mut create = sqs.create_queue().queue_name(name).attributes(
        QueueAttributeName::VisibilityTimeout,
        visibility.to_string(),
    );
    if let Some(max) = max_receives {
        dlq_url = sqs
            .create_queue()
            .queue_name(format!("{name}-dlq"))
            .send()
            .await
            .expect("create the DLQ")
            .queue_url
            .expect("dlq url");
        let policy = serde_json::json!({
            "deadLetterTargetArn": arn(moto, &dlq_url).await,
            "maxReceiveCount": max.to_string(),
        });
        create = create.attributes(QueueAttributeName::RedrivePolicy, policy.to_string());
    }
    let queue_url = create
        .send()
        .await
        .expect("create the queue")
        .queue_url
        .expect("queue url");
    QueueWithDlq { queue_url, dlq_url }
}

/// Sends `bodies` to the queue, 10 a call.
pub async fn send(moto: &Moto, queue_url: &str, bodies: &[String]) {
    let sqs = moto.sqs().await;
    for chunk in bodies.chunks(10) {
        let mut call = sqs.send_message_batch().queue_url(queue_url);
        for (i, body) in chunk.iter().enumerate() {
            call = call.entries(
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(body)
                    .build()
                    .expect("entry"),
            );
        }
        let out = call.send().await.expect("send messages");
        assert!(out.failed().is_empty(), "send failed: {:?}", out.failed());
    }
}

/// The queue's `ApproximateNumberOfMessages` and
/// `ApproximateNumberOfMessagesNotVisible`.
pub async fn counts(moto: &Moto, queue_url: &str) -> (u64, u64) {
    let attrs = moto
        .sqs()
        .await
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .expect("queue attributes")
        .attributes
        .unwrap_or_default();
    let get = |name: QueueAttributeName| -> u64 {
        attrs.get(&name).and_then(|v| v.parse().ok()).unwrap_or(0)
    };
    (
        get(QueueAttributeName::ApproximateNumberOfMessages),
        get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
    )
}

/// Counts by key.
pub fn tally<K: std::hash::Hash + Eq, I: IntoIterator<Item = K>>(items: I) -> HashMap<K, usize> {
    let mut map = HashMap::new();
    for k in items {
        *map.entry(k).or_insert(0) += 1;
    }
    map
}
