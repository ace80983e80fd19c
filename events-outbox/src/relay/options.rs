//! The options of a relay: batch, workers, polling, lease, backoff,
//! retention, gauges, commit durability.

use std::time::Duration;

/// Options of a [`Relay`](super::Relay).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayOptions {
    /// Rows claimed per round (one transaction, one hand-off to the bus).
    /// Default 250.
    pub batch: usize,
    /// Rounds run at once by this relay, each on its own connection (so the
    /// pool needs `workers + 1` connections, the extra one for `LISTEN`):
    /// one round hands rows to the bus while the other claims or commits.
    /// Default 2.
    pub workers: usize,
    /// The polling fallback: the longest wait between rounds when no
    /// notification comes. Default 1 s.
    pub poll_interval: Duration,
    /// The longest a hand-off may take before it counts as a retryable
    /// failure; a relay that stops responding holds its rows for this plus
    /// a quarter (at least 1 s). Default 30 s.
    pub lease: Duration,
    /// The wait after a row's first retryable failure; doubled after each
    /// further one. Default 1 s.
    pub retry_backoff: Duration,
    /// The longest wait between two attempts of one row. Default 5 min.
    pub max_backoff: Duration,
    /// How long published rows are kept (for inspection) before they are
    /// deleted. Default 1 h. `Duration::ZERO` deletes each row in the round
    /// that saw it accepted instead of marking it (the fastest relay: no new
    /// row version, no index entries; [`stats`](crate::stats) then counts no
    /// published rows).
    pub retention: Duration,
    /// How often the relay deletes published rows older than the retention.
    /// Default 1 min.
    pub cleanup_interval: Duration,
    /// How often the relay sets the outbox's gauges (waiting rows, the age
    /// of the oldest: [`record_gauges`](crate::record_gauges)). Default 15 s.
    pub gauges_interval: Duration,
    /// Commit the relay's marks without waiting for the disk
    /// (`synchronous_commit = off` in its transactions only; see the
    /// [module docs](super)). Default `false`.
    pub async_commit: bool,
}

impl Default for RelayOptions {
    fn default() -> Self {
        RelayOptions {
            batch: 250,
            workers: 2,
            poll_interval: Duration::from_secs(1),
            lease: Duration::from_secs(30),
            retry_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
            retention: Duration::from_secs(3600),
            cleanup_interval: Duration::from_secs(60),
            gauges_interval: Duration::from_secs(15),
            async_commit: false,
        }
    }
}
