//! Domain events for clean-architecture services on AWS.
//!
//! Declare an event as a plain struct, derive the rest, write handlers as
//! plain `async fn`s that are found at start-up, and publish through the bus:
//!
//! ```
//! use events_core::{handler, DomainEvent, Event, EventBus};
//!
//! #[derive(DomainEvent, Debug, Clone)]
//! #[event(company = "testclean", service = "api", version = 1, resource = "company", action = "created")]
//! pub struct CompanyCreated {
//!     pub company_name: String,
//! }
//!
//! #[handler]
//! async fn welcome(event: &Event<CompanyCreated>) {
//!     println!("welcome, {} ({})", event.company_name, event.id());
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let bus = EventBus::builder().in_memory_store().build()?;
//! let outcome = bus.publish(CompanyCreated { company_name: "Acme".into() }).await?;
//! assert_eq!(outcome.name(), "testclean.api.1.event.company.created");
//! assert!(outcome.handler_names().any(|h| h.ends_with("::welcome")));
//! # Ok(())
//! # }
//! ```
//!
//! # Names are checked at compile time
//!
//! Every naming rule is checked when your crate compiles:
//!
//! ```compile_fail
//! use events_core::DomainEvent;
//!
//! #[derive(DomainEvent)]
//! #[event(company = "testclean", service = "api", version = 1, resource = "company", action = "create")]
//! struct CompanyCreated; // error: `action` must be in the past tense
//! ```
//!
//! # Modules
//!
//! The crate's modules, one noun each: [`event`] (the trait), [`name`],
//! [`envelope`] (an event with its identity: typed, of any type, or raw),
//! [`handler`](mod@handler), [`registry`], [`bus`], [`store`], [`config`],
//! [`wire`] (the format shared with Python's `package-events-bus`, and
//! EventBridge's envelope), [`aggregate`], [`publisher`] and [`error`].
//!
//! # Features
//!
//! | feature | default | what it gives |
//! | --- | --- | --- |
//! | `derive` | yes | [`DomainEvent`](derive@DomainEvent) (the derive) and [`handler`](macro@handler) (the attribute), re-exported from `events-derive` |
//! | `testing` | no | the test kit, `events_core::testing`: a recording bus, handler runners, scenarios, golden wire fixtures, a per-test process-wide bus (for dev-dependencies) |
//! | `otel` | no | trace context through OpenTelemetry (SPEC §13): a publish inside a span with an OpenTelemetry context sends it in the event's `_trace`, a received event's `process` span is a child of its publisher's ([`trace`]); without it no OpenTelemetry crate is compiled |

#![cfg_attr(docsrs, feature(doc_cfg))]

// The derive's generated code names `::events_core`; this makes it resolve
// inside this crate's own tests too.
extern crate self as events_core;

pub mod aggregate;
mod attributes;
pub mod bus;
pub mod config;
pub mod envelope;
pub mod error;
pub mod event;
pub mod handler;
pub mod metrics;
pub mod name;
pub mod publisher;
pub mod registry;
pub mod store;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;
pub mod trace;
pub mod upcast;
pub mod wire;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use aggregate::Recorder;
#[allow(deprecated)]
#[doc(hidden)]
pub use bus::HandlerOutcomes;
pub use bus::{
    get_event_bus, reset_event_bus, set_event_bus, BatchOutcome, BusError, Delivery,
    DispatchOutcome, EventBus, EventBusBuilder, HandlerOutcome, HandlerStatus, PublishOutcome,
    Received, ReplayReport, Replayer, ReplayerOptions,
};
pub use config::{BusConfig, ConfigError, Mode};
pub use envelope::{AnyEvent, Event, EventId, RawEvent};
pub use error::{DecodeError, EncodeError};
pub use event::{Attributes, DomainEvent};
pub use handler::{Handler, HandlerError, HandlerResult};
pub use name::EventName;
pub use publisher::{Accepted, PublishError, Publisher, PublisherProvider};
pub use store::{EventStore, MemoryStore, SqliteStore, StoreError};

/// The derive of the [`DomainEvent`](trait@DomainEvent) trait (from
/// `events-derive`): [`EVENT_NAME`](DomainEvent::EVENT_NAME) and
/// [`NAME`](DomainEvent::NAME)
/// (an [`EventName`]), checked while your crate compiles, and the reading
/// and writing of the attributes behind [`to_dict`](DomainEvent::to_dict),
/// [`from_dict`](DomainEvent::from_dict), [`to_json`](DomainEvent::to_json)
/// and [`from_json`](DomainEvent::from_json), whose errors are
/// [`DecodeError`]s naming the path to the value at fault. Publish the event
/// with [`EventBus::publish`]; an [`Event`] carries it with its id and time.
/// The type is registered (see [`registry`]) so a bus decodes it by name
/// ([`RawEvent::decode`]) and refuses two types with one name
/// ([`DuplicateEventName`](registry::DuplicateEventName)).
#[cfg(feature = "derive")]
#[cfg_attr(docsrs, doc(cfg(feature = "derive")))]
pub use events_derive::DomainEvent;

/// The handler attribute (from `events-derive`). A handler is found when
/// the bus is built ([`EventBus::builder`], [`EventBus::from_env`]): an
/// `async fn` taking [`&Event<E>`](Event), `&E`,
/// `Event<E>` or `E` for an `E` with
/// [`#[derive(DomainEvent)]`](derive@DomainEvent), returning `()` or
/// `Result<(), Err>` with `Err` convertible into a [`HandlerError`]; or an
/// `impl` [`Handler<E>`](Handler) `for T` block with `T: Default`. A handler
/// with dependencies implements [`Handler`] and is registered with
/// [`EventBusBuilder::register_handler`] instead, on a builder that keeps the
/// environment's configuration: `EventBus::builder_from_env()?.register_handler(..)`
/// ([`EventBus::builder_from_env`]). Each run is reported in
/// the [`PublishOutcome`] ([`PublishOutcome::handler_names`]);
/// [`handler::discovered_handlers`]
/// lists what was found.
#[cfg(feature = "derive")]
#[cfg_attr(docsrs, doc(cfg(feature = "derive")))]
pub use events_derive::handler;

// The crates whose types the public API takes or returns, re-exported (as
// axum re-exports `http`) so a user names them without a dependency of
// their own, at the versions this crate was built with.

/// `serde_json`, whose `Map` and `Value` [`DomainEvent::to_dict`] and
/// [`DomainEvent::from_dict`] return and take.
#[doc(no_inline)]
pub use serde_json;

/// `chrono`, whose `DateTime<Utc>` is an event's `occurred_on`
/// ([`Event::occurred_on`], [`Event::from_dict`], [`Event::with_identity`]).
#[doc(no_inline)]
pub use chrono;

/// `uuid`: an [`EventId`] is made from a `Uuid` (`EventId::from(uuid)`).
#[doc(no_inline)]
pub use uuid;

/// The README's examples, compiled as doc tests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
