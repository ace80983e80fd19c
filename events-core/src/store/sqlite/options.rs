//! The options of `SqliteStore::open_with`.

use std::time::Duration;

use crate::store::clock::StoreClock;
use crate::store::error::StoreError;
use crate::store::event_store::DEFAULT_CLAIM_LEASE;
use crate::store::retention::Retention;

/// Options of [`SqliteStore::open_with`](crate::store::SqliteStore::open_with).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteOptions {
    /// The largest the database file may grow; a store beyond it fails with
    /// SQLite's "database or disk is full", as a full disk would.
    pub max_size_bytes: Option<u64>,
    /// How many handled events (local mode) are kept.
    pub retention: Retention,
    /// How long a replayer's claim lasts ([`EventStore::claim`](crate::store::EventStore::claim)).
    pub claim_lease: Duration,
    /// Run the integrity check at open even after a clean close (what
    /// `events check --repair` does).
    pub check_integrity: bool,
    /// The clock claim leases are measured by (the system's by default; a
    /// test may move it forward instead of waiting for a lease to expire).
    pub clock: StoreClock,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            max_size_bytes: None,
            retention: Retention::default(),
            claim_lease: DEFAULT_CLAIM_LEASE,
            check_integrity: false,
            clock: StoreClock::system(),
        }
    }
}

impl SqliteOptions {
    /// The defaults, with the retention `EVENT_BUS_STORE_RETENTION` asks for.
    ///
    /// # Errors
    ///
    /// [`StoreError::Config`] when `EVENT_BUS_STORE_RETENTION` is not a
    /// retention ([`Retention::from_env`]).
    pub fn from_env() -> Result<SqliteOptions, StoreError> {
        Ok(SqliteOptions {
            retention: Retention::from_env()?,
            ..SqliteOptions::default()
        })
    }
}
