//! The company example: the seed guide's service, in Rust, end to end.
//!
//! The layers of a clean-architecture service:
//!
//! - [`domain`]: the `CompanyCreated` event and the `CompanyAggregate` that
//!   records it;
//! - [`application`]: the `CreateCompanyUseCase`, which saves the aggregate and
//!   then publishes what it recorded;
//! - [`infrastructure`]: a repository and the event handlers (found at start-up
//!   by discovery; more live in the `company-notifications` crate);
//! - [`startup`]: the seed's `lifespan`: one function that builds the bus from
//!   the environment;
//! - `telemetry` (feature `otel`): the trace export of the example's `main`.

pub mod application;
pub mod domain;
pub mod infrastructure;
pub mod startup;
#[cfg(feature = "otel")]
pub mod telemetry;
