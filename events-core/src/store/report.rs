//! What opening a store found and repaired, and what a check found.

use std::path::PathBuf;

/// What opening the store found and did about damage.
///
/// SQLite itself discards a torn write at the end of the write-ahead log (a
/// partial frame, or frames of a transaction that never committed): such a
/// write belonged to a `store` that had not returned, so nothing acknowledged
/// is lost. The report says how much was discarded. A damaged database file
/// is repaired: every readable row is copied into a new file, which then
/// replaces it; the damaged file is kept beside it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenReport {
    /// Bytes of a partial frame at the end of the write-ahead log.
    pub torn_wal_bytes: u64,
    /// Complete log frames after the last commit (an unfinished transaction).
    pub uncommitted_wal_frames: u64,
    /// Whether the integrity check ran at this open (it runs when the last
    /// close was not clean, or when asked).
    pub integrity_checked: bool,
    /// Where the damaged file was kept, when it was repaired.
    pub damaged_file: Option<PathBuf>,
    /// Rows copied out of the damaged file.
    pub rows_recovered: u64,
    /// Rows of the damaged file known to have been there that could not be
    /// read.
    pub rows_lost: u64,
    /// `rows_lost` is a lower bound: damage hid a region whose rows no
    /// index listed.
    pub rows_lost_is_lower_bound: bool,
    /// Events the store had acknowledged (by the high-water mark kept in the
    /// state file, outside SQLite's files) that are gone from the database:
    /// sequence numbers `missing_seqs.0 ..= missing_seqs.1`. Up to this many
    /// events were lost (some may have been delivered before the loss). A
    /// deleted or damaged write-ahead log is the usual cause.
    pub acknowledged_missing: u64,
    /// The range of sequence numbers behind `acknowledged_missing`.
    pub missing_seqs: Option<(i64, i64)>,
}

impl OpenReport {
    /// Whether nothing was found wrong.
    pub fn is_clean(&self) -> bool {
        self.torn_wal_bytes == 0
            && self.uncommitted_wal_frames == 0
            && self.damaged_file.is_none()
            && self.rows_lost == 0
            && self.acknowledged_missing == 0
    }
}

/// What [`SqliteStore::check`](crate::store::SqliteStore::check) found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// SQLite's `integrity_check` messages (empty: the file is sound).
    pub integrity: Vec<String>,
    /// Rows read and decoded.
    pub rows: u64,
    /// Rows that cannot be decoded: `(seq, reason)`.
    pub unreadable: Vec<(i64, String)>,
}

impl CheckReport {
    /// Whether nothing was found wrong.
    pub fn is_clean(&self) -> bool {
        self.integrity.is_empty() && self.unreadable.is_empty()
    }
}
