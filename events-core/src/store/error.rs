//! The store's error type, and how SQLite's and the OS's failures become it.

use std::path::{Path, PathBuf};

/// A store operation failed; the events it concerned were not stored or
/// changed.
#[derive(thiserror::Error)]
pub enum StoreError {
    /// The store could not be opened or created.
    #[error("cannot open the event store at `{path}`")]
    Open {
        /// The store's path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The file is not an event store; it was not changed.
    #[error(
        "`{path}` is not an event store ({reason}); it was left untouched. \
         Point EVENT_BUS_STORE_PATH (or --store) at an event store, a new path, or an empty file"
    )]
    NotAStore {
        /// The file.
        path: PathBuf,
        /// What it is instead.
        reason: String,
    },
    /// The store is damaged and cannot be repaired now.
    #[error("the event store at `{path}` is damaged ({reason}); {action}")]
    Damaged {
        /// The store's path.
        path: PathBuf,
        /// What is wrong.
        reason: String,
        /// What happened and what to do.
        action: String,
    },
    /// The file was written by a newer version of this library.
    #[error(
        "the event store at `{path}` has schema version {found}, newer than the {supported} this build reads; \
         upgrade events-core or point EVENT_BUS_STORE_PATH elsewhere"
    )]
    NewerSchema {
        /// The store's path.
        path: PathBuf,
        /// The version in the file.
        found: i64,
        /// The version this build supports.
        supported: i64,
    },
    /// A setting is invalid.
    #[error("{0}")]
    Config(String),
    /// SQLite reported an error (disk full, read-only file, I/O error).
    #[error("event store error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored row could not be read back.
    #[error("event store row {seq} is unreadable: {reason}")]
    Corrupt {
        /// The row.
        seq: i64,
        /// What is wrong with it.
        reason: String,
    },
    /// The store could not set `PRAGMA synchronous` back to FULL after a
    /// step that ran without it, so it refuses writes it could not make
    /// durable; it tries again at each write.
    #[error(
        "the event store cannot write durably: `PRAGMA synchronous = FULL` did not take after a relaxed step \
         ({reason}); nothing was written"
    )]
    NotDurable {
        /// Why FULL could not be set.
        reason: String,
    },
    /// The store was opened read-only.
    #[error("the event store was opened read-only")]
    ReadOnly,
    /// The store's writer thread is gone (the store was closed).
    #[error("the event store is closed")]
    Closed,
}

/// The message and its causes (the OS reason), the way `anyhow` reports,
/// so `main() -> Result<(), Box<dyn Error>>` shows a person the sentence.
impl std::fmt::Debug for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        crate::error::write_chain(self, f)
    }
}

/// An error opening the store at `path`, with its cause.
pub(super) fn open_error(
    path: &Path,
    source: impl std::error::Error + Send + Sync + 'static,
) -> StoreError {
    StoreError::Open {
        path: path.to_owned(),
        source: Box::new(source),
    }
}

/// Whether SQLite reported that the file is damaged (not an I/O failure).
pub(super) fn is_corruption(error: &rusqlite::Error) -> bool {
    matches!(error, rusqlite::Error::SqliteFailure(e, _) if matches!(
        e.code,
        rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase
    ))
}
