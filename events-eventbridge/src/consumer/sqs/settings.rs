//! [`ConsumerSettings`]: the consumer's settings and their defaults.

use std::time::Duration;

/// The consumer's settings, with their defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConsumerSettings {
    /// Messages asked for per ReceiveMessage, 1 to 10 (`10`).
    pub max_messages: i32,
    /// Long-polling wait per ReceiveMessage in seconds, 0 to 20 (`20`).
    pub wait_seconds: i32,
    /// The visibility timeout asked for on receive, and renewed every half
    /// of it while a handler runs, in seconds, 1 to 43200 (`30`).
    pub visibility_timeout: i32,
    /// Messages in flight at most (`10`).
    pub concurrency: usize,
    /// How long a shutdown waits for in-flight messages (`30 s`).
    pub shutdown_timeout: Duration,
}

impl Default for ConsumerSettings {
    fn default() -> Self {
        ConsumerSettings {
            max_messages: 10,
            wait_seconds: 20,
            visibility_timeout: 30,
            concurrency: 10,
            shutdown_timeout: Duration::from_secs(30),
        }
    }
}

/// How long a receive waits for the permits of a full batch while messages
/// are being handled, and a delete for a full batch while deletes may still
/// come: a fuller call instead of several small ones.
pub(super) const BATCH_FILL_WAIT: Duration = Duration::from_millis(20);
