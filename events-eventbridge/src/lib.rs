//! AWS EventBridge for `events-core` — **not built yet**.
//!
//! This crate will hold the EventBridge publisher (batching, size limits,
//! partial failures, failover), the SQS consumer, and the Lambda and HTTP
//! adapters (SPEC §7–§9). Until it does, `EVENT_BUS_MODE=eventbridge` is a
//! clear start-up error from `events_core::EventBus::from_env`.
//!
//! It will plug into the seams `events-core` already has: a
//! [`Publisher`](events_core::Publisher) that sends [`RawEvent`](events_core::RawEvent)s
//! as [`wire::entry`](events_core::wire::entry) parts, found at start-up
//! through a [`PublisherProvider`](events_core::PublisherProvider). This is
//! the shape, with a publisher that only prints what it would send:
//!
//! ```
//! use std::sync::{Arc, Mutex};
//!
//! use events_core::publisher::{Accepted, BoxFuture, PublishError, Publisher};
//! use events_core::{wire, Delivery, DomainEvent, EventBus, Mode, RawEvent};
//!
//! #[derive(DomainEvent, Debug, Clone)]
//! #[event(company = "testclean", service = "api", version = 1, resource = "company", action = "created")]
//! struct CompanyCreated {
//!     company_name: String,
//! }
//!
//! /// Prints each PutEvents entry instead of sending it.
//! #[derive(Default)]
//! struct PrintingPublisher {
//!     sent: Mutex<Vec<wire::Entry>>,
//! }
//!
//! impl Publisher for PrintingPublisher {
//!     fn name(&self) -> &str {
//!         "printing"
//!     }
//!     fn publish<'a>(&'a self, events: &'a [RawEvent]) -> BoxFuture<'a, Vec<Result<Accepted, PublishError>>> {
//!         Box::pin(async move {
//!             events
//!                 .iter()
//!                 .map(|event| {
//!                     let entry = wire::entry(event, &wire::source_of(event, None));
//!                     println!("{} {} {}", entry.source, entry.detail_type, entry.detail);
//!                     self.sent.lock().unwrap().push(entry);
//!                     Ok(Accepted::default())
//!                 })
//!                 .collect()
//!         })
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let publisher = Arc::new(PrintingPublisher::default());
//! let bus = EventBus::builder()
//!     .mode(Mode::EventBridge)
//!     .in_memory_store()
//!     .publisher(publisher.clone())
//!     .build()?;
//! let outcome = bus.publish(CompanyCreated { company_name: "Acme".into() }).await?;
//! assert_eq!(outcome.delivery(), &Delivery::Published { remote_id: None });
//! let sent = publisher.sent.lock().unwrap();
//! assert_eq!(sent[0].source, "testclean.api");
//! assert_eq!(sent[0].detail_type, "testclean.api.1.event.company.created");
//! # Ok(())
//! # }
//! ```
