//! [`ConsumerSettings`]: the consumer's settings and their defaults.

use std::time::Duration;

/// How long a graceful shutdown waits for in-flight messages, by default
/// (`EVENT_BUS_SHUTDOWN_TIMEOUT`).
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest visibility timeout SQS accepts: 12 hours.
pub(super) const MAX_VISIBILITY_TIMEOUT: Duration = Duration::from_secs(43_200);

/// The longest long-polling wait SQS accepts: 20 seconds.
pub(super) const MAX_WAIT_TIME: Duration = Duration::from_secs(20);

/// The consumer's settings, with their defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConsumerSettings {
    /// Messages asked for per ReceiveMessage, 1 to 10 (`10`).
    pub max_messages: i32,
    /// Long-polling wait per ReceiveMessage, 0 to 20 s in whole seconds
    /// (`20 s`).
    pub wait_time: Duration,
    /// The visibility timeout asked for on receive, and renewed every half
    /// of it while a handler runs, 1 s to 12 h in whole seconds (`30 s`).
    pub visibility_timeout: Duration,
    /// Messages in flight at most (`10`).
    pub concurrency: usize,
    /// How long a graceful shutdown waits for in-flight messages before it
    /// abandons them (not deleted: SQS delivers them again) (`30 s`).
    pub shutdown_timeout: Duration,
}

impl Default for ConsumerSettings {
    fn default() -> Self {
        ConsumerSettings {
            max_messages: 10,
            wait_time: Duration::from_secs(20),
            visibility_timeout: Duration::from_secs(30),
            concurrency: 10,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
        }
    }
}

/// How long a receive waits for the permits of a full batch while messages
/// are being handled, and a delete for a full batch while deletes may still
/// come: a fuller call instead of several small ones.
pub(super) const BATCH_FILL_WAIT: Duration = Duration::from_millis(20);
