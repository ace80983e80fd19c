//! The span of a batch of received messages (a Lambda SQS event, one SQS ReceiveMessage): `process {queue}`, linked (feature `otel`) to each message's publish context, following OpenTelemetry's messaging conventions for a batch.

use events_core::{DecodeError, Received};

/// What [`EventBus::receive`](events_core::EventBus::receive) made of one
/// message's body.
pub(crate) type Decoded = Result<Received, DecodeError>;

/// Where a batch's span sits in its trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Parent {
    /// A child of the span current when it is made (a Lambda invocation's).
    #[cfg_attr(not(feature = "lambda"), allow(dead_code))]
    Current,
    /// The root of a trace of its own (each batch of a long-running
    /// `SqsConsumer`, whose run span lasts as long as it runs).
    #[cfg_attr(not(feature = "sqs"), allow(dead_code))]
    Root,
}

/// The span to process a batch of `decoded` messages from `queue` in (not
/// entered yet): `process_batch`, exported as `process {queue}` (`process`
/// when the queue is not known), kind consumer, with `messaging.system =
/// "aws_sqs"`, `messaging.operation.name` and `.type` = `process`,
/// `messaging.destination.name` and `messaging.batch.message_count`.
///
/// With the `otel` feature it links to the publish context of each message
/// that carried one, and takes its parent from none of them: each message's
/// own `process {event name}` span is the child of its publisher's, inside
/// this one for the log lines (a message without a context is this span's
/// child in the trace too).
pub(crate) fn span<'a>(
    queue: Option<&str>,
    decoded: impl ExactSizeIterator<Item = &'a Decoded>,
    parent: Parent,
) -> tracing::Span {
    let span = tracing::info_span!(
        "process_batch",
        otel.name = tracing::field::Empty,
        otel.kind = "consumer",
        messaging.system = "aws_sqs",
        messaging.operation.name = "process",
        messaging.operation.type = "process",
        messaging.destination.name = queue,
        messaging.batch.message_count = decoded.len(),
    );
    if span.is_disabled() {
        return span;
    }
    let name = match queue {
        Some(queue) => format!("process {queue}"),
        None => "process".to_owned(),
    };
    span.record("otel.name", name);
    #[cfg(feature = "otel")]
    {
        if parent == Parent::Root {
            events_core::trace::set_root(&span);
        }
        for received in decoded.filter_map(|d| d.as_ref().ok()) {
            if let Some(trace) = received.trace() {
                events_core::trace::link(&span, trace);
            }
        }
    }
    #[cfg(not(feature = "otel"))]
    let _ = (decoded, parent);
    span
}

/// The queue's name at the end of its URL
/// (`https://sqs.eu-west-1.amazonaws.com/123456789012/orders` → `orders`).
#[cfg_attr(not(feature = "sqs"), allow(dead_code))]
pub(crate) fn queue_name_of_url(url: &str) -> Option<&str> {
    url.trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|name| !name.is_empty() && !name.contains(':'))
}

/// The queue's name at the end of its ARN
/// (`arn:aws:sqs:eu-west-1:123456789012:orders` → `orders`).
#[cfg_attr(not(feature = "lambda"), allow(dead_code))]
pub(crate) fn queue_name_of_arn(arn: &str) -> Option<&str> {
    arn.rsplit(':').next().filter(|name| !name.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_names_come_from_urls_and_arns() {
        assert_eq!(
            queue_name_of_url("https://sqs.eu-west-1.amazonaws.com/123456789012/orders"),
            Some("orders")
        );
        assert_eq!(
            queue_name_of_url("http://127.0.0.1:5000/123456789012/orders/"),
            Some("orders")
        );
        assert_eq!(queue_name_of_url("http://127.0.0.1:5000"), None);
        assert_eq!(
            queue_name_of_arn("arn:aws:sqs:us-east-1:123456789012:orders-queue"),
            Some("orders-queue")
        );
        assert_eq!(
            queue_name_of_arn("arn:aws:sqs:us-east-1:123456789012:"),
            None
        );
    }
}
