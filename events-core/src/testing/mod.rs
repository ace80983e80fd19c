//! A test kit for code that publishes and handles events (the `testing`
//! feature; add it to your dev-dependencies:
//! `events-core = { version = "…", features = ["testing"] }`).
//!
//! ```
//! use events_core::testing::{assert_handlers_succeeded, run_handlers, RecordingBus};
//! use events_core::{handler, DomainEvent, Event, EventBus};
//!
//! #[derive(DomainEvent, Debug, Clone, PartialEq)]
//! #[event(company = "testclean", service = "api", version = 1, resource = "company", action = "created")]
//! pub struct CompanyCreated {
//!     pub company_name: String,
//! }
//!
//! #[handler]
//! async fn send_welcome_email(event: &Event<CompanyCreated>) -> Result<(), std::io::Error> {
//!     Ok(())
//! }
//!
//! /// The code under test takes an `EventBus`, as use cases do.
//! async fn create_company(bus: &EventBus, name: &str) -> Result<(), events_core::BusError> {
//!     bus.publish(CompanyCreated { company_name: name.into() }).await?;
//!     Ok(())
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), events_core::BusError> {
//! // A use case: what did it publish?
//! let bus = RecordingBus::new();
//! create_company(&bus, "Acme").await?;
//! let created = bus.assert_published::<CompanyCreated>(|e| e.company_name == "Acme");
//! assert_eq!(bus.published::<CompanyCreated>(), [created]);
//!
//! // A handler, on its own.
//! let outcomes = run_handlers(CompanyCreated { company_name: "Acme".into() }).await;
//! assert_handlers_succeeded(&outcomes);
//! # Ok(())
//! # }
//! ```
//!
//! What is in it:
//!
//! - [`RecordingBus`]: a real [`EventBus`](crate::EventBus) that publishes
//!   nothing anywhere and keeps what was published, in order: typed access
//!   ([`published`](RecordingBus::published)), and assertions
//!   ([`assert_published`](RecordingBus::assert_published),
//!   [`assert_not_published`](RecordingBus::assert_not_published),
//!   [`assert_published_in_order`](RecordingBus::assert_published_in_order),
//!   [`assert_published_exactly`](RecordingBus::assert_published_exactly))
//!   whose failures list what was published instead (name, id, attributes).
//!   Its handlers run when the test asks
//!   ([`dispatch_published`](RecordingBus::dispatch_published)), or in
//!   `publish`, awaited or spawned (async mode: [`settle`](RecordingBus::settle)
//!   waits for them, so tests never sleep; the spawned handlers' outcomes are
//!   not returned: the bus does not keep them). [`refuse_next`](RecordingBus::refuse_next)
//!   plays EventBridge being down (the events fail over to the bus's store).
//!   [`bus.run_handlers`](RecordingBus::run_handlers) /
//!   [`bus.run_handler`](RecordingBus::run_handler) run the bus's own
//!   handlers of an event, discovered and registered.
//! - [`run_handlers`] / [`run_handler`]: the discovered handlers of an event
//!   (or one of them, by name) called on a given event, with each outcome;
//!   [`assert_handlers_succeeded`].
//! - [`Scenario`]: "when this use case runs, expect exactly these events and
//!   these handler outcomes", failing with a diff that names the test's line.
//! - [`assert_wire_golden`]: an event's wire form (SPEC §4) checked against
//!   a golden file, rewritten with `EVENTS_UPDATE_GOLDEN=1`.
//! - [`scope_event_bus`]: the process-wide bus
//!   ([`get_event_bus`](crate::get_event_bus)) scoped to one test and the
//!   tasks it spawns, so tests running in parallel never share it, and need
//!   no `reset_event_bus()`; while a scope is open, code in no scope panics
//!   rather than getting the real bus from the environment.
//!
//! Each test builds its own `RecordingBus`; nothing is shared between tests,
//! so `cargo test` runs them in parallel.

mod golden;
mod handlers;
mod recording;
mod render;
mod scenario;
pub(crate) mod scope;

pub use golden::{assert_wire_golden, fixed_event, UPDATE_GOLDEN_VAR};
pub use handlers::{assert_handlers_succeeded, run_handler, run_handlers};
pub use recording::{Dispatched, RecordingBus, RecordingBusBuilder};
pub use scenario::{Expect, Scenario};
pub use scope::{scope_event_bus, EventBusScope};
