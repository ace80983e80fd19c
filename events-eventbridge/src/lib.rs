//! AWS EventBridge for `events-core` — **not built yet**.
//!
//! This crate will hold the EventBridge publisher (batching, size limits,
//! partial failures, failover), the SQS consumer, and the Lambda and HTTP
//! adapters (SPEC §7–§9). Until it does, `EVENT_BUS_MODE=eventbridge` is a
//! clear start-up error from `events_core::EventBus::from_env`.
//!
//! The seams it will plug into already exist in `events-core`:
//! [`events_core::Publisher`] and [`events_core::PublisherProvider`].
//!
//! ```
//! // The wire format it will send is already defined by events-core:
//! let entry_limit = 256 * 1024;
//! assert!(events_core::name::MAX_NAME_LEN < entry_limit);
//! ```
