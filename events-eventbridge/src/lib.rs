//! AWS EventBridge for `events-core`: the production mode of the bus. The
//! [`EventBridgePublisher`] sends events; the `SqsConsumer` (feature `sqs`,
//! default) runs handlers on what a queue receives from the bus, and the
//! `lambda` and `http` features add adapters feeding the same [`Processor`].
//!
//! # Features
//!
//! | feature | what it adds | default |
//! | --- | --- | --- |
//! | `sqs` | `SqsConsumer`: long polling, batch deletes, visibility extension, graceful shutdown | yes |
//! | `sqlite` | `SqliteDedup`: the deduplication table in a SQLite file | yes |
//! | `lambda` | the `lambda` module: adapters for `aws_lambda_events` SQS and EventBridge events (no HTTP server compiled) | no |
//! | `http` | the `http` module: the `axum` router for EventBridge API destinations (no Lambda runtime compiled) | no |
//! | `otel` | `events-core`'s `otel`: the `_trace` field and PutEvents' `TraceHeader` written from the publish's span, consumers' `process` spans children of the publishers', batch spans linked to them | no |
//!
//! Without any feature, the crate is the publisher alone.
//!
//! # Publishing
//!
//! An [`EventBridgePublisher`] sends events with PutEvents: batches of at
//! most 10 entries and 256 KiB (or up to 1 MiB, configured), per-entry
//! throttling re-sent with backoff, permanent refusals dead-lettered, and
//! everything else failed over to the bus's local store. Here with a
//! scripted EventBridge (`aws-smithy-mocks`), so the example runs anywhere;
//! in production leave `.client(..)` out and the standard AWS chain
//! (`aws-config`) supplies one:
//!
//! ```
//! use std::sync::Arc;
//!
//! use aws_sdk_eventbridge::operation::put_events::PutEventsOutput;
//! use aws_sdk_eventbridge::types::PutEventsResultEntry;
//! use aws_smithy_mocks::mock;
//! use events_core::{Delivery, DomainEvent, EventBus, Mode};
//! use events_eventbridge::EventBridgePublisher;
//!
//! #[derive(DomainEvent, Debug, Clone)]
//! #[event(company = "testclean", service = "api", version = 1, resource = "company", action = "created")]
//! struct CompanyCreated {
//!     company_name: String,
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // EventBridge accepts every entry.
//! let put_events = mock!(aws_sdk_eventbridge::Client::put_events).then_compute_output(|input| {
//!     let accepted = input.entries().iter().map(|_| PutEventsResultEntry::builder().event_id("eb-1").build());
//!     PutEventsOutput::builder().set_entries(Some(accepted.collect())).failed_entry_count(0).build()
//! });
//! # let client = aws_sdk_eventbridge::Client::from_conf(
//! #     aws_sdk_eventbridge::Config::builder()
//! #         .with_test_defaults()
//! #         .http_client(aws_smithy_mocks::create_mock_http_client())
//! #         .interceptor(aws_smithy_mocks::MockResponseInterceptor::new().with_rule(&put_events))
//! #         .build(),
//! # );
//!
//! let publisher = EventBridgePublisher::builder()
//!     .bus("orders")
//!     .client(client)
//!     .max_request_bytes(256 * 1024)
//!     .build()
//!     .await?;
//! let bus = EventBus::builder()
//!     .mode(Mode::EventBridge)
//!     .in_memory_store()
//!     .publisher(Arc::new(publisher))
//!     .build()?;
//! let outcome = bus.publish(CompanyCreated { company_name: "Acme".into() }).await?;
//! assert_eq!(outcome.delivery(), &Delivery::Published { remote_id: Some("eb-1".into()) });
//! assert_eq!(put_events.num_calls(), 1);
//! # Ok(())
//! # }
//! ```
//!
//! # In a service
//!
//! Link the crate and set `EVENT_BUS_MODE=eventbridge`: the
//! bus finds the `eventbridge` mode at start-up with no code in `main`
//! (inventory drops items of crates nobody references, so name it once:
//! `use events_eventbridge as _;`). Events go out with PutEvents and fail
//! over to the local store when AWS fails:
//!
//! ```no_run
//! use events_core::{DomainEvent, EventBus};
//! use events_eventbridge as _; // registers the `eventbridge` mode
//!
//! #[derive(DomainEvent, Debug, Clone)]
//! #[event(company = "testclean", service = "api", version = 1, resource = "company", action = "created")]
//! struct CompanyCreated {
//!     company_name: String,
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // EVENT_BUS_MODE=eventbridge EVENT_BUS_NAME=orders AWS_REGION=eu-west-1 ...
//! let bus = EventBus::from_env().await?;
//! let outcome = bus.publish(CompanyCreated { company_name: "Acme".into() }).await?;
//! println!("{:?}", outcome.delivery()); // Published, or FailedOver when AWS is away
//! # Ok(())
//! # }
//! ```
//!
//! # Consumer spans
//!
//! Every consumer path processes each event in a `consume` span from
//! [`Received::span`](events_core::Received::span), exported as
//! `process {event name}` (kind consumer, `messaging.message.id` = the
//! event id, `messaging.destination.name` = the `SqsConsumer`'s queue or
//! what [`Processor::with_destination`] named). An SQS batch (one
//! ReceiveMessage of the `SqsConsumer`, one SQS event of
//! `lambda::handle_sqs_event`) is processed in a `process_batch` span
//! around its events' spans, exported as `process {queue}` with
//! `messaging.system = "aws_sqs"`, `messaging.destination.name` and
//! `messaging.batch.message_count`. With the `otel` feature, following
//! OpenTelemetry's messaging conventions, each `process {event name}` span
//! is a child of the span that published its event, and the batch's span
//! links to each of those publish spans and takes its parent from none of
//! them: the `SqsConsumer`'s is the root of a trace of its own for each
//! receive, the Lambda adapter's a child of the invocation's span. An event
//! that carried no context is processed as the batch span's child. The
//! Lambda EventBridge adapter and the HTTP adapter take one event per call:
//! no batch span.
//!
//! # Settings
//!
//! The publisher reads these (the consumer's are in `consumer::sqs`):
//!
//! | variable | meaning | default |
//! | --- | --- | --- |
//! | `EVENT_BUS_NAME` | bus name or ARN (events-core) | `default` |
//! | `EVENT_BUS_SOURCE` | PutEvents `Source` (events-core) | `{company}.{service}` of each event |
//! | `EVENT_BUS_MAX_REQUEST_BYTES` | PutEvents request size limit, 1024 to 1048576 | `262144` |
//! | `EVENT_BUS_CHECK` | DescribeEventBus once at start-up; a missing bus fails it | `false` |
//! | `EVENT_BUS_CONCURRENCY` | PutEvents calls in flight at once (all publishes together) | `8` |
//! | `EVENT_BUS_LINGER` | how long an event waits for concurrent publishes to share its call (`0`, `500us`, `2ms`, at most `1s`) | `1ms` |
//! | `AWS_REGION`, credentials, `AWS_ENDPOINT_URL`, `AWS_MAX_ATTEMPTS` | the standard AWS chain (`aws-config`) | |

#![cfg_attr(docsrs, feature(doc_cfg))]

mod aws;
pub mod batch;
mod coalesce;
pub mod consumer;
pub mod dedup;
mod entry_error;
mod error;
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub mod http;
#[cfg(feature = "lambda")]
#[cfg_attr(docsrs, doc(cfg(feature = "lambda")))]
pub mod lambda;
mod publisher;
pub mod retry;
mod sdk_error;

pub use aws::{https_client, load_sdk_config};
pub use entry_error::EntryError;
#[allow(deprecated)]
pub use error::Error;
pub use error::PublisherBuildError;
#[allow(deprecated)]
pub use publisher::{Builder, TOO_LARGE};
pub use publisher::{
    EnvSettings, EventBridgePublisher, EventBridgePublisherBuilder, DEFAULT_CONCURRENCY,
    DEFAULT_LINGER, MAX_LINGER,
};
pub use retry::RetryPolicy;

#[cfg(feature = "sqs")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqs")))]
pub use consumer::sqs::{
    CancellationToken, ConsumeReport, ConsumerError, ConsumerSettings, SqsConsumer,
    SqsConsumerBuilder,
};
pub use consumer::{Processed, Processor};
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use dedup::SqliteDedup;
pub use dedup::{Dedup, MemoryDedup};

/// The AWS SDK crates this one is built on, for callers that configure them.
pub use aws_config;
#[cfg(feature = "lambda")]
#[cfg_attr(docsrs, doc(cfg(feature = "lambda")))]
pub use aws_lambda_events;
pub use aws_sdk_eventbridge;
#[cfg(feature = "sqs")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqs")))]
pub use aws_sdk_sqs;
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub use axum;
