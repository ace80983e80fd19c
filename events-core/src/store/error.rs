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
    /// The store's file, folder or lock files could not be created (a
    /// read-only location, a full disk).
    #[error(
        "cannot create the event store {what} `{path}`; point EVENT_BUS_STORE_PATH (or --store) \
         at a location this process can write"
    )]
    Create {
        /// The file or folder that could not be created.
        path: PathBuf,
        /// What it is (`file`, `folder`, `lock file`).
        what: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
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
    /// SQLite reported an error (disk full, read-only file, I/O error): its
    /// message is the source.
    #[error("the event store's SQLite call failed")]
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

/// The store's `what` at `path` could not be created.
pub(super) fn create_error(path: &Path, what: &'static str, source: std::io::Error) -> StoreError {
    StoreError::Create {
        path: path.to_owned(),
        what,
        source,
    }
}

/// What SQLite's failure to read or write the store's files means: damage
/// is told apart by [`is_corruption`]; an I/O failure (SQLite says only
/// "disk I/O error" or "database or disk is full") is said with what the
/// file system shows: no space left, or the process's file size limit.
pub(super) fn sqlite_open_error(path: &Path, error: rusqlite::Error) -> StoreError {
    match IoFailure::diagnose(path, &error) {
        Some(cause) => StoreError::Open {
            path: path.to_owned(),
            source: Box::new(IoFailure {
                cause,
                sqlite: error,
            }),
        },
        None => open_error(path, error),
    }
}

/// An I/O failure SQLite reported, with what it means.
#[derive(Debug)]
struct IoFailure {
    cause: String,
    sqlite: rusqlite::Error,
}

impl std::fmt::Display for IoFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.cause)
    }
}

impl std::error::Error for IoFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.sqlite)
    }
}

/// Below this many free bytes a store cannot even create its shared-memory
/// index (32 KiB) and a log frame: the disk is full for it.
const FULL_BELOW: u64 = 64 * 1024;

impl IoFailure {
    fn diagnose(path: &Path, error: &rusqlite::Error) -> Option<String> {
        let rusqlite::Error::SqliteFailure(e, _) = error else {
            return None;
        };
        if !matches!(
            e.code,
            rusqlite::ErrorCode::SystemIoFailure
                | rusqlite::ErrorCode::DiskFull
                | rusqlite::ErrorCode::CannotOpen
        ) {
            return None;
        }
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        #[cfg(unix)]
        {
            if let Ok(fs) = rustix::fs::statvfs(dir) {
                let free = fs.f_bavail.saturating_mul(fs.f_frsize.max(1));
                if free < FULL_BELOW {
                    return Some(format!(
                        "no space left on the device holding `{}` ({free} bytes free); \
                         the store was not changed: free some space and start again",
                        dir.display()
                    ));
                }
            }
            let limit = rustix::process::getrlimit(rustix::process::Resource::Fsize);
            if let Some(max) = limit.current {
                return Some(format!(
                    "the process may not write files larger than {max} bytes (RLIMIT_FSIZE, `ulimit -f`); \
                     the store was not changed"
                ));
            }
        }
        let _ = dir;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damage_is_told_from_other_failures() {
        let corrupt = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
            None,
        );
        let busy = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            None,
        );
        assert!(is_corruption(&corrupt));
        assert!(!is_corruption(&busy));
        // Not an I/O failure: said as SQLite says it.
        let err = sqlite_open_error(Path::new("/x/events.db"), busy);
        assert!(matches!(err, StoreError::Open { .. }));
        assert!(!format!("{err:?}").contains("no space"), "{err:?}");
    }

    #[test]
    fn an_io_failure_on_a_disk_with_room_and_no_size_limit_is_said_as_sqlite_says_it() {
        let io = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_IOERR),
            None,
        );
        let dir = tempfile::tempdir().unwrap();
        let err = sqlite_open_error(&dir.path().join("events.db"), io);
        let text = format!("{err:?}");
        let limited = rustix::process::getrlimit(rustix::process::Resource::Fsize)
            .current
            .is_some();
        assert_eq!(text.contains("RLIMIT_FSIZE"), limited, "{text}");
        assert!(text.contains("disk I/O error"), "{text}");
    }

    #[test]
    fn create_errors_name_what_was_attempted_and_the_variable() {
        let err = create_error(
            Path::new("/ro/events.db"),
            "file",
            std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        );
        assert_eq!(
            err.to_string(),
            "cannot create the event store file `/ro/events.db`; point EVENT_BUS_STORE_PATH \
             (or --store) at a location this process can write"
        );
        assert!(format!("{err:?}").contains("permission denied"), "{err:?}");
    }
}
