//! Deduplication of received events, keyed by `(event id, handler name)`.
//!
//! SQS delivers at least once, and a message whose handler failed is
//! delivered again with all its handlers. A [`Dedup`] remembers which
//! handlers of an event already succeeded, so a redelivery runs only the
//! others: only handlers that succeeded are marked. Two implementations:
//! [`MemoryDedup`] (one process, entries expire after a TTL) and, with the
//! `sqlite` feature, [`SqliteDedup`] (a table in a SQLite file, shared by
//! restarts and by the processes of one host).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

// Tokio's clock (the system's unless a test pauses it): expiry is testable
// without waiting.
use tokio::time::Instant;

/// A boxed, sendable future: what the [`Dedup`] methods return.
pub type DedupFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, DedupError>> + Send + 'a>>;

/// Why the deduplication table could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DedupError {
    /// The SQLite table failed.
    #[cfg(feature = "sqlite")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
    #[error("the deduplication table failed")]
    Sqlite(#[from] rusqlite::Error),
    /// The blocking task that reads the table did not finish.
    #[error("deduplication task failed: {0}")]
    Task(String),
    /// The file is not a deduplication file (not SQLite, or another
    /// application's database): it was not changed.
    #[error(
        "`{path}` is not a deduplication file: {reason}; it was left untouched \
         (set EVENT_BUS_DEDUP_PATH to a new file, or to one a consumer created)"
    )]
    NotADedupFile {
        /// The file.
        path: std::path::PathBuf,
        /// What it is instead.
        reason: String,
    },
    /// The file or its folder could not be created.
    #[error("cannot create the deduplication file `{path}`: {error}")]
    Create {
        /// The file.
        path: std::path::PathBuf,
        /// The operating system's error.
        error: std::io::Error,
    },
}

/// Remembers which handlers of an event succeeded.
pub trait Dedup: Send + Sync + 'static {
    /// Of `handlers`, the names already marked for `event_id`.
    ///
    /// # Errors
    ///
    /// The table cannot be read; the consumer then leaves the message for
    /// redelivery.
    fn handled<'a>(
        &'a self,
        event_id: &'a str,
        handlers: &'a [&'a str],
    ) -> DedupFuture<'a, Vec<String>>;

    /// Marks `handlers` as succeeded for `event_id`.
    ///
    /// # Errors
    ///
    /// The table cannot be written; a redelivery then runs those handlers
    /// again.
    fn mark<'a>(&'a self, event_id: &'a str, handlers: &'a [String]) -> DedupFuture<'a, ()>;
}

/// The default time an entry is kept: SQS keeps a message at most 14 days.
pub const DEFAULT_TTL: Duration = Duration::from_secs(14 * 24 * 60 * 60);

/// In-memory deduplication for one process; entries expire after a TTL
/// (default [`DEFAULT_TTL`]) and are pruned as new ones arrive.
#[derive(Debug)]
pub struct MemoryDedup {
    ttl: Duration,
    entries: Mutex<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    marked: HashMap<(String, String), Instant>,
    next_prune: usize,
}

impl Default for MemoryDedup {
    fn default() -> Self {
        MemoryDedup::new(DEFAULT_TTL)
    }
}

impl MemoryDedup {
    /// An empty table whose entries live `ttl`.
    pub fn new(ttl: Duration) -> Self {
        MemoryDedup {
            ttl,
            entries: Mutex::new(Entries {
                marked: HashMap::new(),
                next_prune: 1024,
            }),
        }
    }

    /// The number of entries kept (expired ones not yet pruned included).
    pub fn len(&self) -> usize {
        self.entries.lock().map(|e| e.marked.len()).unwrap_or(0)
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lookup(&self, event_id: &str, handlers: &[&str]) -> Vec<String> {
        let now = Instant::now();
        let Ok(entries) = self.entries.lock() else {
            return Vec::new();
        };
        handlers
            .iter()
            .filter(|h| {
                entries
                    .marked
                    .get(&(event_id.to_owned(), (**h).to_owned()))
                    .is_some_and(|at| now.duration_since(*at) < self.ttl)
            })
            .map(|h| (*h).to_owned())
            .collect()
    }

    fn insert(&self, event_id: &str, handlers: &[String]) {
        let now = Instant::now();
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        for h in handlers {
            entries.marked.insert((event_id.to_owned(), h.clone()), now);
        }
        if entries.marked.len() >= entries.next_prune {
            let ttl = self.ttl;
            entries.marked.retain(|_, at| now.duration_since(*at) < ttl);
            entries.next_prune = (entries.marked.len() * 2).max(1024);
        }
    }
}

impl Dedup for MemoryDedup {
    fn handled<'a>(
        &'a self,
        event_id: &'a str,
        handlers: &'a [&'a str],
    ) -> DedupFuture<'a, Vec<String>> {
        let found = self.lookup(event_id, handlers);
        Box::pin(async move { Ok(found) })
    }

    fn mark<'a>(&'a self, event_id: &'a str, handlers: &'a [String]) -> DedupFuture<'a, ()> {
        self.insert(event_id, handlers);
        Box::pin(async { Ok(()) })
    }
}

#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use sqlite::SqliteDedup;

#[cfg(feature = "sqlite")]
mod sqlite {
    use std::path::Path;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

    use super::{Dedup, DedupError, DedupFuture, DEFAULT_TTL};

    const SCHEMA: &str = "
        CREATE TABLE IF NOT EXISTS events_bus_handled (
            event_id   TEXT NOT NULL,
            handler    TEXT NOT NULL,
            handled_at INTEGER NOT NULL,
            PRIMARY KEY (event_id, handler)
        ) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS events_bus_handled_at ON events_bus_handled (handled_at);
    ";

    /// Deduplication in a SQLite file (table `events_bus_handled`), kept
    /// across restarts and shared by the processes of one host. Marks are
    /// committed (WAL, `synchronous=FULL`) before
    /// [`mark`](Dedup::mark) returns; entries older than the TTL are deleted
    /// when the table is opened and every 10,000 marks.
    ///
    /// A missing file is created (and its folder), readable by its owner
    /// only on Unix (0600, folder 0700), as the event store's files are. An
    /// existing file is used only if it is empty or already holds the table:
    /// any other file (a text file, the event store, another application's
    /// database) is refused with [`DedupError::NotADedupFile`] and left as
    /// it was.
    #[derive(Debug, Clone)]
    pub struct SqliteDedup {
        conn: Arc<Mutex<Conn>>,
        ttl: Duration,
        clock: Clock,
    }

    /// The time marks are stamped with and expire by, in seconds since the
    /// Unix epoch: the system's, or a test's.
    #[derive(Clone)]
    struct Clock(Arc<dyn Fn() -> i64 + Send + Sync>);

    impl std::fmt::Debug for Clock {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("Clock")
        }
    }

    #[derive(Debug)]
    struct Conn {
        db: Connection,
        marks: u64,
    }

    /// Creates `path` (0600) and its folder (0700) if missing.
    fn create_private(path: &Path) -> Result<(), DedupError> {
        let create = |error| DedupError::Create {
            path: path.to_owned(),
            error,
        };
        if path.exists() {
            return Ok(());
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.exists() {
                let mut builder = std::fs::DirBuilder::new();
                builder.recursive(true);
                #[cfg(unix)]
                std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
                builder.create(dir).map_err(create)?;
            }
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(path) {
            Ok(_) => Ok(()),
            // Another process created it meanwhile: fine, it is checked next.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(create(e)),
        }
    }

    /// Refuses a file that is not empty and holds no deduplication table.
    fn check_ours(db: &Connection, path: &Path) -> Result<(), DedupError> {
        let refuse = |reason: String| DedupError::NotADedupFile {
            path: path.to_owned(),
            reason,
        };
        let tables: Vec<String> = match db
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .and_then(|mut stmt| {
                stmt.query_map([], |r| r.get::<_, String>(0))?
                    .collect::<Result<Vec<_>, _>>()
            }) {
            Ok(tables) => tables,
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::NotADatabase =>
            {
                return Err(refuse("it is not a SQLite database".to_owned()));
            }
            Err(e) => return Err(e.into()),
        };
        if tables.is_empty() || tables.iter().any(|t| t == "events_bus_handled") {
            return Ok(());
        }
        let mut shown: Vec<&str> = tables.iter().take(5).map(String::as_str).collect();
        if tables.len() > shown.len() {
            shown.push("…");
        }
        Err(refuse(format!(
            "it is a SQLite database of something else (tables: {})",
            shown.join(", ")
        )))
    }

    fn now_secs() -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }

    impl SqliteDedup {
        /// Opens (or creates) the table in the SQLite file at `path`, with
        /// entries kept [`DEFAULT_TTL`].
        ///
        /// # Errors
        ///
        /// As [`open_with_ttl`](Self::open_with_ttl).
        pub fn open(path: impl AsRef<Path>) -> Result<Self, DedupError> {
            Self::open_with_ttl(path, DEFAULT_TTL)
        }

        /// Opens (or creates) the table, with entries kept `ttl`.
        ///
        /// # Errors
        ///
        /// [`DedupError::Create`] when the file or its folder cannot be
        /// created, [`DedupError::NotADedupFile`] when `path` is another
        /// file (not SQLite, or another application's database: left
        /// untouched), [`DedupError::Sqlite`] when SQLite fails.
        pub fn open_with_ttl(path: impl AsRef<Path>, ttl: Duration) -> Result<Self, DedupError> {
            Self::open_on(path.as_ref(), ttl, Clock(Arc::new(now_secs)))
        }

        /// [`open_with_ttl`](Self::open_with_ttl) on `clock` (seconds since
        /// the Unix epoch) instead of the system's.
        #[cfg(test)]
        pub(super) fn open_with_clock(
            path: impl AsRef<Path>,
            ttl: Duration,
            clock: impl Fn() -> i64 + Send + Sync + 'static,
        ) -> Result<Self, DedupError> {
            Self::open_on(path.as_ref(), ttl, Clock(Arc::new(clock)))
        }

        fn open_on(path: &Path, ttl: Duration, clock: Clock) -> Result<Self, DedupError> {
            create_private(path)?;
            // The file exists now: open it without SQLite's create flag, and
            // check it is ours before anything writes to it.
            let db = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            db.busy_timeout(Duration::from_secs(10))?;
            check_ours(&db, path)?;
            let _mode: String = db.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
            db.execute_batch("PRAGMA synchronous=FULL;")?;
            db.execute_batch(SCHEMA)?;
            let dedup = SqliteDedup {
                conn: Arc::new(Mutex::new(Conn { db, marks: 0 })),
                ttl,
                clock,
            };
            dedup.prune_now()?;
            Ok(dedup)
        }

        fn cutoff(&self) -> i64 {
            (self.clock.0)().saturating_sub(i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX))
        }

        fn prune_now(&self) -> Result<usize, DedupError> {
            let cutoff = self.cutoff();
            let conn = self.lock()?;
            Ok(conn.db.execute(
                "DELETE FROM events_bus_handled WHERE handled_at < ?1",
                params![cutoff],
            )?)
        }

        fn lock(&self) -> Result<std::sync::MutexGuard<'_, Conn>, DedupError> {
            self.conn
                .lock()
                .map_err(|_| DedupError::Task("the connection's lock is poisoned".to_owned()))
        }

        /// The number of (event id, handler) marks in the table.
        ///
        /// # Errors
        ///
        /// [`DedupError::Sqlite`] when the table cannot be read.
        pub fn marked(&self) -> Result<usize, DedupError> {
            let conn = self.lock()?;
            let n: i64 = conn
                .db
                .query_row("SELECT COUNT(*) FROM events_bus_handled", [], |r| r.get(0))?;
            Ok(usize::try_from(n).unwrap_or(0))
        }

        fn lookup(&self, event_id: &str, handlers: &[String]) -> Result<Vec<String>, DedupError> {
            let cutoff = self.cutoff();
            let conn = self.lock()?;
            let mut stmt = conn.db.prepare_cached(
                "SELECT 1 FROM events_bus_handled WHERE event_id = ?1 AND handler = ?2 AND handled_at >= ?3",
            )?;
            let mut found = Vec::new();
            for h in handlers {
                let hit: Option<i64> = stmt
                    .query_row(params![event_id, h, cutoff], |r| r.get(0))
                    .optional()?;
                if hit.is_some() {
                    found.push(h.clone());
                }
            }
            Ok(found)
        }

        fn insert(&self, event_id: &str, handlers: &[String]) -> Result<(), DedupError> {
            let now = (self.clock.0)();
            let mut conn = self.lock()?;
            let tx = conn.db.transaction()?;
            {
                let mut stmt = tx.prepare_cached(
                    "INSERT OR REPLACE INTO events_bus_handled (event_id, handler, handled_at) VALUES (?1, ?2, ?3)",
                )?;
                for h in handlers {
                    stmt.execute(params![event_id, h, now])?;
                }
            }
            tx.commit()?;
            conn.marks += 1;
            let prune = conn.marks % 10_000 == 0;
            drop(conn);
            if prune {
                self.prune_now()?;
            }
            Ok(())
        }
    }

    async fn blocking<T: Send + 'static>(
        f: impl FnOnce() -> Result<T, DedupError> + Send + 'static,
    ) -> Result<T, DedupError> {
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| DedupError::Task(e.to_string()))?
    }

    impl Dedup for SqliteDedup {
        fn handled<'a>(
            &'a self,
            event_id: &'a str,
            handlers: &'a [&'a str],
        ) -> DedupFuture<'a, Vec<String>> {
            let this = self.clone();
            let id = event_id.to_owned();
            let names: Vec<String> = handlers.iter().map(|h| (*h).to_owned()).collect();
            Box::pin(blocking(move || this.lookup(&id, &names)))
        }

        fn mark<'a>(&'a self, event_id: &'a str, handlers: &'a [String]) -> DedupFuture<'a, ()> {
            let this = self.clone();
            let id = event_id.to_owned();
            let names = handlers.to_vec();
            Box::pin(blocking(move || this.insert(&id, &names)))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// On tokio's paused clock: the TTL passes when the test says so.
    #[tokio::test(start_paused = true)]
    async fn memory_marks_only_what_it_is_told_and_forgets_after_the_ttl() {
        let dedup = MemoryDedup::new(Duration::from_millis(50));
        dedup.mark("e1", &["a".to_owned()]).await.unwrap();
        assert_eq!(dedup.handled("e1", &["a", "b"]).await.unwrap(), ["a"]);
        assert!(dedup.handled("e2", &["a"]).await.unwrap().is_empty());
        tokio::time::advance(Duration::from_millis(49)).await;
        assert_eq!(dedup.handled("e1", &["a"]).await.unwrap(), ["a"]);
        tokio::time::advance(Duration::from_millis(11)).await;
        assert!(dedup.handled("e1", &["a"]).await.unwrap().is_empty());
    }

    #[cfg(feature = "sqlite")]
    #[tokio::test]
    async fn sqlite_marks_survive_reopening() {
        let dir = std::env::temp_dir().join(format!("dedup-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("dedup.db");
        let _ = std::fs::remove_file(&path);
        // A clock the test moves, in seconds since the Unix epoch.
        let now = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(1_700_000_000));
        let clock = || {
            let now = std::sync::Arc::clone(&now);
            move || now.load(std::sync::atomic::Ordering::SeqCst)
        };
        {
            let dedup = SqliteDedup::open_with_clock(&path, DEFAULT_TTL, clock()).unwrap();
            dedup
                .mark("e1", &["a".to_owned(), "c".to_owned()])
                .await
                .unwrap();
        }
        let dedup = SqliteDedup::open_with_clock(&path, DEFAULT_TTL, clock()).unwrap();
        assert_eq!(
            dedup.handled("e1", &["a", "b", "c"]).await.unwrap(),
            ["a", "c"]
        );
        assert_eq!(dedup.marked().unwrap(), 2);
        let expired = SqliteDedup::open_with_clock(&path, Duration::ZERO, clock()).unwrap();
        // The same second: still there; one second later: expired.
        assert_eq!(expired.handled("e1", &["a"]).await.unwrap(), ["a"]);
        now.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        assert!(expired.handled("e1", &["a"]).await.unwrap().is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The trial found the dedup file created 0644 while every store file is
    /// 0600; and, as for the store (issue 7), a path that names somebody
    /// else's file must not change it.
    #[cfg(feature = "sqlite")]
    #[test]
    fn sqlite_creates_a_private_file_and_refuses_files_that_are_not_its_own() {
        let dir = std::env::temp_dir().join(format!("dedup-own-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("state").join("dedup.db");
        drop(SqliteDedup::open(&path).unwrap());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode =
                |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(path.parent().unwrap()), 0o700);
        }
        // Reopening its own file works.
        drop(SqliteDedup::open(&path).unwrap());

        let text = dir.join(".env");
        std::fs::write(&text, "SECRET=1\nOTHER=2\n").unwrap();
        let err = SqliteDedup::open(&text).unwrap_err();
        assert!(
            matches!(&err, DedupError::NotADedupFile { reason, .. } if reason.contains("not a SQLite database")),
            "{err}"
        );
        assert!(err.to_string().contains("left untouched"), "{err}");
        assert_eq!(std::fs::read(&text).unwrap(), b"SECRET=1\nOTHER=2\n");

        let other = dir.join("app.db");
        {
            let db = rusqlite::Connection::open(&other).unwrap();
            db.execute_batch("CREATE TABLE users (name TEXT); INSERT INTO users VALUES ('ann');")
                .unwrap();
        }
        let before = std::fs::read(&other).unwrap();
        let err = SqliteDedup::open(&other).unwrap_err();
        assert!(
            matches!(&err, DedupError::NotADedupFile { reason, .. } if reason.contains("tables: users")),
            "{err}"
        );
        assert_eq!(std::fs::read(&other).unwrap(), before, "not changed");
        assert!(!dir.join("app.db-wal").exists(), "no side file created");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
