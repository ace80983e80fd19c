//! The embedded durable store on SQLite.

use std::path::{Path, PathBuf};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::types::{Value, ValueRef};
use rusqlite::{params, params_from_iter, Connection, OpenFlags, TransactionBehavior};
use tokio::sync::oneshot;

use super::files::{self, open_error, Found, Presence, StateWriter};
use super::repair;
use super::time::{parse_store_time, store_time};
use super::{
    EventState, EventStore, Retention, StoreError, StoreStats, StoredEvent, UnreadableRow,
    APPLICATION_ID, DEFAULT_CLAIM_LEASE,
};
use crate::envelope::{now, EventId, RawEvent};
use crate::publisher::BoxFuture;

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: i64 = 2;

/// The owner mark in the `events_store_meta` table.
pub(super) const OWNER: &str = "events-core event store";

const STATE_PENDING: i64 = 0;
const STATE_DEAD: i64 = 1;
const STATE_HANDLED: i64 = 2;

type Job = Box<dyn FnOnce(&mut Ctx) + Send>;

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

enum Request {
    Store {
        events: Vec<RawEvent>,
        dead: Option<String>,
        reply: Reply<()>,
    },
    Handled(Vec<EventId>, Reply<usize>),
    Job(Job),
}

/// The embedded durable store on SQLite (see the module docs).
pub struct SqliteStore {
    path: PathBuf,
    report: OpenReport,
    read_only: bool,
    sender: Mutex<Option<mpsc::Sender<Request>>>,
    writer: Mutex<Option<std::thread::JoinHandle<bool>>>,
    presence: Mutex<Option<Presence>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .field("read_only", &self.read_only)
            .field("report", &self.report)
            .finish_non_exhaustive()
    }
}

/// Options of [`SqliteStore::open_with`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteOptions {
    /// The largest the database file may grow; a store beyond it fails with
    /// SQLite's "database or disk is full", as a full disk would.
    pub max_size_bytes: Option<u64>,
    /// How many handled events (local mode) are kept.
    pub retention: Retention,
    /// How long a replayer's claim lasts ([`EventStore::claim`]).
    pub claim_lease: Duration,
    /// Run the integrity check at open even after a clean close (what
    /// `events check --repair` does).
    pub check_integrity: bool,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            max_size_bytes: None,
            retention: Retention::default(),
            claim_lease: DEFAULT_CLAIM_LEASE,
            check_integrity: false,
        }
    }
}

impl SqliteOptions {
    /// The defaults, with the retention `EVENT_BUS_STORE_RETENTION` asks for.
    pub fn from_env() -> Result<SqliteOptions, StoreError> {
        Ok(SqliteOptions {
            retention: Retention::from_env()?,
            ..SqliteOptions::default()
        })
    }
}

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

/// What [`SqliteStore::check`] found.
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

/// Most requests one group commit takes.
const MAX_GROUP: usize = 4096;

/// The schema, created in a transaction of the caller.
pub(super) fn create_schema(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS events (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL,
            occurred_on TEXT NOT NULL,
            attributes TEXT NOT NULL,
            stored_at TEXT NOT NULL,
            state INTEGER NOT NULL DEFAULT 0,
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            last_attempt_at TEXT,
            claim_owner TEXT,
            claim_until INTEGER
        );
        CREATE INDEX IF NOT EXISTS events_by_state ON events (state, seq);
        CREATE TABLE IF NOT EXISTS unreadable (
            seq INTEGER PRIMARY KEY,
            id, name, occurred_on, attributes, stored_at, state, attempts, last_error, last_attempt_at,
            reason TEXT NOT NULL,
            found_at TEXT NOT NULL
        );
        CREATE TABLE IF NOT EXISTS events_store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT OR IGNORE INTO events_store_meta (key, value) VALUES ('owner', '{OWNER}');
        PRAGMA application_id = {APPLICATION_ID};
        PRAGMA user_version = {SCHEMA_VERSION};"
    ))
}

/// Version 1 → 2: states instead of a dead flag, claims, unreadable rows,
/// the ownership marks. One transaction.
fn migrate_v1(conn: &mut Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch(
        "ALTER TABLE events RENAME TO events_v1; DROP INDEX IF EXISTS events_by_state;",
    )?;
    create_schema(&tx)?;
    tx.execute_batch(
        "INSERT INTO events (seq, id, name, occurred_on, attributes, stored_at, state, attempts, last_error, last_attempt_at)
            SELECT seq, id, name, occurred_on, attributes, stored_at, CASE WHEN dead THEN 1 ELSE 0 END,
                   attempts, last_error, last_attempt_at FROM events_v1;
         UPDATE sqlite_sequence SET seq = MAX(seq, COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'events_v1'), 0))
            WHERE name = 'events';
         DROP TABLE events_v1;
         DELETE FROM sqlite_sequence WHERE name = 'events_v1';",
    )?;
    tx.commit()
}

fn is_corruption(error: &rusqlite::Error) -> bool {
    matches!(error, rusqlite::Error::SqliteFailure(e, _) if matches!(
        e.code,
        rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase
    ))
}

impl SqliteStore {
    /// Opens (creating it and its folder if needed) the store at `path`.
    ///
    /// Only a file that is an event store (or empty, or missing) is opened:
    /// anything else is refused with [`StoreError::NotAStore`] and left
    /// untouched. Fails with a clear error when the path cannot be written or
    /// the file has a newer schema. Opening checks that the store can be
    /// written, so a read-only location is reported here, at start-up.
    /// Damage from a crash is repaired when no other process has the store
    /// open, and described in [`SqliteStore::open_report`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(path, SqliteOptions::default())
    }

    /// Opens the store with options.
    pub fn open_with(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self, StoreError> {
        let path = path.as_ref().to_owned();
        // Refuse what is not ours before leaving any trace beside it.
        files::inspect(&path)?;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            files::create_dir(parent).map_err(|e| open_error(&path, e))?;
        }
        let mut presence = Presence::enter(&path, false)?;
        let mut report = OpenReport::default();
        let prepared = prepare(&path, &options, &presence, &mut report);
        let (conn, hwm) = match prepared {
            Ok(ready) => ready,
            Err(e) => {
                presence.leave(false);
                return Err(e);
            }
        };
        files::mark_open(&presence, Some(hwm));
        let state = presence.state_writer();
        presence.opened();
        if !report.is_clean() {
            tracing::warn!(path = %path.display(), ?report, "event store opened after damage; see the report");
        }
        Self::start(path, report, conn, false, options, state, hwm, presence)
    }

    /// Opens an existing store for reading only: nothing is created,
    /// written, migrated or repaired (what the `events` tool's read commands
    /// use). Write methods fail with [`StoreError::ReadOnly`].
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_owned();
        files::inspect(&path)?;
        let mut presence = Presence::enter(&path, true)?;
        let result = (|| {
            if files::sibling(&path, ".repair").exists() {
                return Err(StoreError::Damaged {
                    path: path.clone(),
                    reason: "a repair was interrupted".to_owned(),
                    action: "open it with a program that writes to it (or `events check --repair`) to finish the repair".to_owned(),
                });
            }
            match files::inspect(&path)? {
                Found::Missing => Err(open_error(
                    &path,
                    std::io::Error::new(std::io::ErrorKind::NotFound, "no event store here"),
                )),
                Found::Empty => Err(StoreError::NotAStore {
                    path: path.clone(),
                    reason: "it is empty".to_owned(),
                }),
                Found::Damaged { reason } => Err(StoreError::Damaged {
                    path: path.clone(),
                    reason,
                    action: "it was left untouched; `events check --repair` (or the next program that opens it for writing, alone) repairs it".to_owned(),
                }),
                Found::Store { legacy: true } => Err(StoreError::Damaged {
                    path: path.clone(),
                    reason: "it has schema version 1".to_owned(),
                    action: "open it once with a program of this version (or `events check --repair`) to upgrade it".to_owned(),
                }),
                Found::Store { legacy: false } => {
                    let conn = Connection::open_with_flags(
                        &path,
                        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                    )
                    .map_err(|e| open_error(&path, e))?;
                    let setup = || -> rusqlite::Result<i64> {
                        conn.busy_timeout(Duration::from_secs(5))?;
                        conn.query_row("PRAGMA user_version", [], |r| r.get(0))
                    };
                    let version = setup().map_err(|e| open_error(&path, e))?;
                    if version > SCHEMA_VERSION {
                        return Err(StoreError::NewerSchema {
                            path: path.clone(),
                            found: version,
                            supported: SCHEMA_VERSION,
                        });
                    }
                    Ok(conn)
                }
            }
        })();
        let conn = match result {
            Ok(conn) => conn,
            Err(e) => {
                presence.leave(false);
                return Err(e);
            }
        };
        let mut report = OpenReport::default();
        let db_seq = sequence(&conn).unwrap_or(0);
        note_missing(&path, presence.found.hwm, db_seq, &mut report);
        presence.opened();
        Self::start(
            path,
            report,
            conn,
            true,
            SqliteOptions::default(),
            None,
            db_seq,
            presence,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn start(
        path: PathBuf,
        report: OpenReport,
        conn: Connection,
        read_only: bool,
        options: SqliteOptions,
        state: Option<StateWriter>,
        hwm: i64,
        presence: Presence,
    ) -> Result<Self, StoreError> {
        let handled = conn
            .query_row(
                "SELECT COUNT(*) FROM events WHERE state = ?1",
                [STATE_HANDLED],
                |r| r.get::<_, i64>(0),
            )
            .unwrap_or(0);
        let ctx = Ctx {
            conn,
            read_only,
            lease: options.claim_lease,
            retention: options.retention,
            owner: uuid::Uuid::new_v4().to_string(),
            handled: u64::try_from(handled).unwrap_or(0),
            last_age_prune: None,
            state,
            hwm,
            saw_corruption: false,
        };
        let (sender, receiver) = mpsc::channel();
        let writer = std::thread::Builder::new()
            .name("events-store".to_owned())
            .spawn(move || writer_loop(ctx, receiver));
        let writer = match writer {
            Ok(writer) => writer,
            Err(e) => {
                presence.leave(false);
                return Err(open_error(&path, e));
            }
        };
        tracing::debug!(path = %path.display(), read_only, "event store opened");
        Ok(SqliteStore {
            path,
            report,
            read_only,
            sender: Mutex::new(Some(sender)),
            writer: Mutex::new(Some(writer)),
            presence: Mutex::new(Some(presence)),
        })
    }

    /// What opening found and repaired.
    pub fn open_report(&self) -> &OpenReport {
        &self.report
    }

    /// The store's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether it was opened read-only.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// Runs SQLite's full integrity check and decodes every row (what
    /// `events check` does); changes nothing.
    pub fn check(&self) -> BoxFuture<'_, Result<CheckReport, StoreError>> {
        self.job(|ctx| {
            let mut report = CheckReport::default();
            let mut stmt = ctx.conn.prepare("PRAGMA integrity_check")?;
            let messages = stmt
                .query_map([], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            report.integrity = messages.into_iter().filter(|m| m != "ok").collect();
            let mut rows = ctx.conn.prepare(&format!("SELECT {COLUMNS} FROM events"))?;
            let mut rows = rows.query([])?;
            while let Some(row) = rows.next()? {
                report.rows += 1;
                if let Err(bad) = decode_row(row)? {
                    report.unreadable.push(bad);
                }
            }
            Ok(report)
        })
    }

    fn send(&self, request: Request) -> Result<(), StoreError> {
        let guard = self.sender.lock().unwrap_or_else(|p| p.into_inner());
        match guard.as_ref() {
            Some(sender) => sender.send(request).map_err(|_| StoreError::Closed),
            None => Err(StoreError::Closed),
        }
    }

    fn job<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Ctx) -> Result<R, StoreError> + Send + 'static,
    ) -> BoxFuture<'_, Result<R, StoreError>> {
        let (tx, rx) = oneshot::channel();
        let sent = self.send(Request::Job(Box::new(move |ctx| {
            let result = f(ctx);
            if let Err(StoreError::Sqlite(e)) = &result {
                ctx.saw_corruption |= is_corruption(e);
            }
            let _ = tx.send(result);
        })));
        Box::pin(async move {
            sent?;
            rx.await.unwrap_or(Err(StoreError::Closed))
        })
    }

    fn write_job<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Ctx) -> Result<R, StoreError> + Send + 'static,
    ) -> BoxFuture<'_, Result<R, StoreError>> {
        if self.read_only {
            return Box::pin(async { Err(StoreError::ReadOnly) });
        }
        self.job(f)
    }

    /// Stops the writer thread after the requests already sent; later calls
    /// fail with [`StoreError::Closed`]. The last process to close the store
    /// marks the close clean, so the next open skips the integrity check.
    pub fn close(&self) {
        self.sender.lock().unwrap_or_else(|p| p.into_inner()).take();
        let mut clean = true;
        if let Some(writer) = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take() {
            clean = matches!(writer.join(), Ok(false));
        }
        if let Some(presence) = self
            .presence
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            presence.leave(clean && !self.read_only);
        }
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.close();
    }
}

/// Everything before the store may be used: ownership, an unfinished
/// repair, damage, the schema. Returns the connection and the high-water
/// mark.
fn prepare(
    path: &Path,
    options: &SqliteOptions,
    presence: &Presence,
    report: &mut OpenReport,
) -> Result<(Connection, i64), StoreError> {
    let exclusive = presence.exclusive();
    if exclusive {
        repair::finish_interrupted(path, report)?;
    }
    let found = files::inspect(path)?;
    let in_use = |reason: String| StoreError::Damaged {
        path: path.to_owned(),
        reason,
        action:
            "another process has the store open, so it was not repaired and was left untouched; \
                 stop the other processes and open it again"
                .to_owned(),
    };
    let existed = match found {
        Found::Missing => {
            files::open_private(path).map_err(|e| open_error(path, e))?;
            false
        }
        Found::Empty => {
            files::make_private(path).map_err(|e| open_error(path, e))?;
            false
        }
        Found::Store { .. } => true,
        Found::Damaged { reason } => {
            if !exclusive {
                return Err(in_use(reason));
            }
            repair::repair(path, &reason, presence.found.hwm, report)?;
            true
        }
    };
    if exclusive {
        inspect_wal(path, report);
    }
    let mut conn = match connect(path, options) {
        Ok(conn) => conn,
        Err(ConnectError::Corrupt(e)) if exclusive => {
            repair::repair(path, &e.to_string(), presence.found.hwm, report)?;
            connect(path, options).map_err(|e| e.into_store(path))?
        }
        Err(ConnectError::Corrupt(e)) => return Err(in_use(e.to_string())),
        Err(e) => return Err(e.into_store(path)),
    };
    let unclean = !presence.found.clean || (existed && presence.found.hwm.is_none());
    // After an unclean close the first process in checks; a check asked
    // for runs whoever else has the store open, but repairs only alone.
    if existed && report.damaged_file.is_none() && (options.check_integrity || exclusive && unclean)
    {
        report.integrity_checked = true;
        if let Err(reason) = integrity(&conn) {
            if !exclusive {
                return Err(in_use(reason));
            }
            drop(conn);
            repair::repair(path, &reason, presence.found.hwm, report)?;
            conn = connect(path, options).map_err(|e| e.into_store(path))?;
        }
    }
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| open_error(path, e))?;
    if version == 1 {
        migrate_v1(&mut conn).map_err(|e| open_error(path, e))?;
        tracing::info!(path = %path.display(), "event store upgraded to schema version {SCHEMA_VERSION}");
    } else {
        // Creating the schema (or, on an existing file, a no-op write) also
        // proves the location is writable.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| open_error(path, e))?;
        create_schema(&tx).map_err(|e| open_error(path, e))?;
        tx.commit().map_err(|e| open_error(path, e))?;
    }
    let db_seq = sequence(&conn).map_err(|e| open_error(path, e))?;
    let hwm = if report.damaged_file.is_none() {
        note_missing(path, presence.found.hwm, db_seq, report)
    } else {
        db_seq
    };
    if hwm > db_seq {
        // Never reuse the numbers of lost events, and report them once.
        conn.execute(
            "UPDATE sqlite_sequence SET seq = ?1 WHERE name = 'events'",
            [hwm],
        )
        .and_then(|n| {
            if n == 0 {
                conn.execute(
                    "INSERT INTO sqlite_sequence (name, seq) VALUES ('events', ?1)",
                    [hwm],
                )
            } else {
                Ok(n)
            }
        })
        .map_err(|e| open_error(path, e))?;
    }
    Ok((conn, hwm.max(db_seq)))
}

/// Compares the database's highest sequence number with the high-water
/// mark; returns the higher.
fn note_missing(path: &Path, hwm: Option<i64>, db_seq: i64, report: &mut OpenReport) -> i64 {
    let Some(hwm) = hwm.filter(|&h| h > db_seq) else {
        return db_seq;
    };
    report.acknowledged_missing = u64::try_from(hwm - db_seq).unwrap_or(0);
    report.missing_seqs = Some((db_seq + 1, hwm));
    tracing::error!(
        path = %path.display(),
        missing = report.acknowledged_missing,
        from = db_seq + 1,
        to = hwm,
        "events the store had acknowledged are gone from it (was its write-ahead log deleted or damaged?)"
    );
    hwm
}

fn sequence(conn: &Connection) -> rusqlite::Result<i64> {
    match conn.query_row(
        "SELECT seq FROM sqlite_sequence WHERE name = 'events'",
        [],
        |r| r.get(0),
    ) {
        Ok(seq) => Ok(seq),
        Err(rusqlite::Error::QueryReturnedNoRows) => Ok(0),
        Err(e) => Err(e),
    }
}

enum ConnectError {
    Corrupt(rusqlite::Error),
    Other(StoreError),
}

impl ConnectError {
    fn into_store(self, path: &Path) -> StoreError {
        match self {
            ConnectError::Corrupt(e) => open_error(path, e),
            ConnectError::Other(e) => e,
        }
    }
}

fn connect(path: &Path, options: &SqliteOptions) -> Result<Connection, ConnectError> {
    let wrap = |e: rusqlite::Error| {
        if is_corruption(&e) {
            ConnectError::Corrupt(e)
        } else {
            ConnectError::Other(open_error(path, e))
        }
    };
    let conn = Connection::open(path).map_err(wrap)?;
    let setup = || -> rusqlite::Result<i64> {
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        if let Some(max) = options.max_size_bytes {
            let page_size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
            let pages = i64::try_from(max).unwrap_or(i64::MAX) / page_size.max(1);
            conn.pragma_update(None, "max_page_count", pages.max(1))?;
        }
        conn.query_row("PRAGMA user_version", [], |r| r.get(0))
    };
    let version = setup().map_err(wrap)?;
    if version > SCHEMA_VERSION {
        return Err(ConnectError::Other(StoreError::NewerSchema {
            path: path.to_owned(),
            found: version,
            supported: SCHEMA_VERSION,
        }));
    }
    Ok(conn)
}

fn integrity(conn: &Connection) -> Result<(), String> {
    let result: String = conn
        .query_row("PRAGMA quick_check(1)", [], |r| r.get(0))
        .map_err(|e| e.to_string())?;
    if result != "ok" {
        return Err(format!("integrity check: {result}"));
    }
    // The table must also be fully readable.
    conn.query_row(
        "SELECT COUNT(*), COALESCE(MAX(seq), 0) FROM events",
        [],
        |_| Ok(()),
    )
    .map_err(|e| e.to_string())
}

// ------------------------------------------------------------ the writer

/// The writer thread's state.
pub(super) struct Ctx {
    conn: Connection,
    read_only: bool,
    lease: Duration,
    retention: Retention,
    /// This store's claim token.
    owner: String,
    /// Handled rows (local mode's journal).
    handled: u64,
    last_age_prune: Option<Instant>,
    state: Option<StateWriter>,
    hwm: i64,
    saw_corruption: bool,
}

impl Ctx {
    fn immediate(&mut self) -> rusqlite::Result<rusqlite::Transaction<'_>> {
        self.conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
    }

    fn raise_hwm(&mut self, seq: i64) {
        if seq > self.hwm {
            self.hwm = seq;
            if let Some(state) = &self.state {
                state.record(seq);
            }
        }
    }
}

/// Returns whether SQLite reported corruption while the store was open.
fn writer_loop(mut ctx: Ctx, receiver: mpsc::Receiver<Request>) -> bool {
    while let Ok(first) = receiver.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_GROUP {
            match receiver.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let mut group = Group::default();
        for request in batch {
            match request {
                Request::Store {
                    events,
                    dead,
                    reply,
                } => group.stores.push((events, dead, reply)),
                Request::Handled(ids, reply) => group.handled.push((ids, reply)),
                Request::Job(job) => {
                    // Keep order: writes sent before this job commit first.
                    commit_group(&mut ctx, std::mem::take(&mut group));
                    job(&mut ctx);
                }
            }
        }
        commit_group(&mut ctx, group);
    }
    ctx.saw_corruption
}

type StoreRequest = (Vec<RawEvent>, Option<String>, Reply<()>);

#[derive(Default)]
struct Group {
    stores: Vec<StoreRequest>,
    handled: Vec<(Vec<EventId>, Reply<usize>)>,
}

/// Writes every waiting request in one transaction (one fsync).
fn commit_group(ctx: &mut Ctx, group: Group) {
    if group.stores.is_empty() && group.handled.is_empty() {
        return;
    }
    if ctx.read_only {
        for (_, _, reply) in group.stores {
            let _ = reply.send(Err(StoreError::ReadOnly));
        }
        for (_, reply) in group.handled {
            let _ = reply.send(Err(StoreError::ReadOnly));
        }
        return;
    }
    // Marks alone need no fsync of their own: a lost mark leaves an event
    // pending, never loses one; the next store's fsync makes them durable.
    let relaxed = group.stores.is_empty();
    if relaxed {
        let _ = ctx.conn.pragma_update(None, "synchronous", "NORMAL");
    }
    let result = write_group(ctx, &group);
    if relaxed {
        let _ = ctx.conn.pragma_update(None, "synchronous", "FULL");
    }
    match result {
        Ok((last_seq, counts)) => {
            if let Some(seq) = last_seq {
                ctx.raise_hwm(seq);
            }
            for (_, _, reply) in group.stores {
                let _ = reply.send(Ok(()));
            }
            for ((_, reply), n) in group.handled.into_iter().zip(counts) {
                let _ = reply.send(Ok(n));
            }
        }
        Err(group_error) if group.stores.len() + group.handled.len() > 1 => {
            ctx.saw_corruption |= is_corruption(&group_error);
            // One bad request must not fail its neighbours: retry each alone.
            tracing::warn!(error = %group_error, requests = group.stores.len() + group.handled.len(), "group commit failed; retrying requests one by one");
            for store in group.stores {
                commit_group(
                    ctx,
                    Group {
                        stores: vec![store],
                        handled: Vec::new(),
                    },
                );
            }
            for handled in group.handled {
                commit_group(
                    ctx,
                    Group {
                        stores: Vec::new(),
                        handled: vec![handled],
                    },
                );
            }
        }
        Err(e) => {
            ctx.saw_corruption |= is_corruption(&e);
            for (_, _, reply) in group.stores {
                let _ = reply.send(Err(StoreError::Sqlite(clone_error(&e))));
            }
            for (_, reply) in group.handled {
                let _ = reply.send(Err(StoreError::Sqlite(clone_error(&e))));
            }
        }
    }
}

fn write_group(ctx: &mut Ctx, group: &Group) -> rusqlite::Result<(Option<i64>, Vec<usize>)> {
    let retention = ctx.retention;
    let mut handled = ctx.handled;
    let prune_age = retention.max_age.filter(|_| {
        !group.handled.is_empty()
            && ctx
                .last_age_prune
                .is_none_or(|t| t.elapsed() >= Duration::from_secs(60))
    });
    let tx = ctx.immediate()?;
    let mut last_seq = None;
    let mut counts = Vec::with_capacity(group.handled.len());
    {
        let stored_at = store_time(now());
        let mut insert = tx.prepare_cached(
            "INSERT OR IGNORE INTO events (id, name, occurred_on, attributes, stored_at, state, attempts, last_error, last_attempt_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        for (events, dead, _) in &group.stores {
            for e in events {
                let inserted = insert.execute(params![
                    e.id.as_str(),
                    e.name,
                    store_time(e.occurred_on),
                    e.attributes,
                    stored_at,
                    if dead.is_some() {
                        STATE_DEAD
                    } else {
                        STATE_PENDING
                    },
                    i64::from(dead.is_some()),
                    dead,
                    dead.as_ref().map(|_| stored_at.clone()),
                ])?;
                if inserted > 0 {
                    last_seq = Some(tx.last_insert_rowid());
                }
            }
        }
        let mut mark = tx.prepare_cached(
            "UPDATE events SET state = ?2, claim_owner = NULL, claim_until = NULL WHERE id = ?1 AND state = ?3",
        )?;
        for (ids, _) in &group.handled {
            let mut n = 0;
            for id in ids {
                n += mark.execute(params![id.as_str(), STATE_HANDLED, STATE_PENDING])?;
            }
            handled += n as u64;
            counts.push(n);
        }
    }
    if let Some(max) = retention.max_events {
        if handled > max {
            let excess = i64::try_from(handled - max).unwrap_or(i64::MAX);
            let removed = tx.execute(
                "DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE state = ?1 ORDER BY seq LIMIT ?2)",
                params![STATE_HANDLED, excess],
            )?;
            handled -= removed as u64;
        }
    }
    if let Some(age) = prune_age {
        let cutoff = chrono::Duration::from_std(age)
            .ok()
            .and_then(|age| now().checked_sub_signed(age));
        if let Some(cutoff) = cutoff {
            let removed = tx.execute(
                "DELETE FROM events WHERE state = ?1 AND stored_at < ?2",
                params![STATE_HANDLED, store_time(cutoff)],
            )?;
            handled = handled.saturating_sub(removed as u64);
        }
    }
    tx.commit()?;
    ctx.handled = handled;
    if prune_age.is_some() {
        ctx.last_age_prune = Some(Instant::now());
    }
    Ok((last_seq, counts))
}

fn clone_error(e: &rusqlite::Error) -> rusqlite::Error {
    match e {
        rusqlite::Error::SqliteFailure(code, msg) => {
            rusqlite::Error::SqliteFailure(*code, msg.clone())
        }
        other => rusqlite::Error::ToSqlConversionFailure(other.to_string().into()),
    }
}

// --------------------------------------------------------------- reading

const COLUMNS: &str =
    "seq, id, name, occurred_on, attributes, stored_at, state, attempts, last_error, last_attempt_at";

const COLUMN_NAMES: [&str; 10] = [
    "seq",
    "id",
    "name",
    "occurred_on",
    "attributes",
    "stored_at",
    "state",
    "attempts",
    "last_error",
    "last_attempt_at",
];

fn text(value: ValueRef<'_>, column: &str) -> Result<Option<String>, String> {
    match value {
        ValueRef::Null => Ok(None),
        ValueRef::Text(bytes) => std::str::from_utf8(bytes)
            .map(|s| Some(s.to_owned()))
            .map_err(|_| format!("column `{column}` is not valid UTF-8")),
        ValueRef::Integer(_) => Err(format!("column `{column}` holds an integer, not text")),
        ValueRef::Real(_) => Err(format!("column `{column}` holds a number, not text")),
        ValueRef::Blob(_) => Err(format!("column `{column}` holds bytes, not text")),
    }
}

fn required(value: ValueRef<'_>, column: &str) -> Result<String, String> {
    text(value, column)?.ok_or_else(|| format!("column `{column}` is NULL"))
}

fn time(value: ValueRef<'_>, column: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    parse_store_time(&required(value, column)?).map_err(|e| format!("column `{column}`: {e}"))
}

/// A row, or why it cannot be read (`(seq, reason)`); `Err` only for
/// SQLite's own failures.
fn decode_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<StoredEvent, (i64, String)>> {
    let seq: i64 = row.get(0)?;
    let get = |i: usize| row.get_ref(i);
    let values: Vec<ValueRef<'_>> = (1..10).map(get).collect::<rusqlite::Result<_>>()?;
    let decoded = (|| -> Result<StoredEvent, String> {
        let state = match values[5] {
            ValueRef::Integer(STATE_PENDING) => EventState::Pending,
            ValueRef::Integer(STATE_DEAD) => EventState::Dead,
            ValueRef::Integer(STATE_HANDLED) => EventState::Handled,
            _ => return Err("column `state` holds no known state".to_owned()),
        };
        let attempts = match values[6] {
            ValueRef::Integer(n) => u32::try_from(n.max(0)).unwrap_or(u32::MAX),
            _ => return Err("column `attempts` is not a number".to_owned()),
        };
        Ok(StoredEvent {
            event: RawEvent {
                id: EventId::from(required(values[0], "id")?),
                name: required(values[1], "name")?,
                occurred_on: time(values[2], "occurred_on")?,
                attributes: required(values[3], "attributes")?,
            },
            seq,
            stored_at: time(values[4], "stored_at")?,
            attempts,
            last_error: text(values[7], "last_error")?,
            last_attempt_at: match values[8] {
                ValueRef::Null => None,
                v => Some(time(v, "last_attempt_at")?),
            },
            state,
        })
    })();
    Ok(decoded.map_err(|reason| (seq, reason)))
}

type Rows = (Vec<StoredEvent>, Vec<(i64, String)>);

fn read(conn: &Connection, filter: &str, args: &[Value]) -> Result<Rows, StoreError> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM events {filter}"))?;
    let mut rows = stmt.query(params_from_iter(args.iter()))?;
    let (mut good, mut bad) = (Vec::new(), Vec::new());
    while let Some(row) = rows.next()? {
        match decode_row(row)? {
            Ok(event) => good.push(event),
            Err(unreadable) => bad.push(unreadable),
        }
    }
    Ok((good, bad))
}

/// Moves unreadable rows out of the queue, raw bytes kept, so they block
/// nothing.
fn quarantine(conn: &Connection, bad: &[(i64, String)]) -> rusqlite::Result<()> {
    let found_at = store_time(now());
    for (seq, reason) in bad {
        tracing::error!(seq, %reason, "unreadable row in the event store; moved to the dead letters");
        conn.execute(
            &format!(
                "INSERT OR REPLACE INTO unreadable ({COLUMNS}, reason, found_at)
                 SELECT {COLUMNS}, ?2, ?3 FROM events WHERE seq = ?1"
            ),
            params![seq, reason, found_at],
        )?;
        conn.execute("DELETE FROM events WHERE seq = ?1", [seq])?;
    }
    Ok(())
}

/// Reads, moving unreadable rows aside and reading again until every row
/// returned is sound. Read-only, it skips them (and says so in the log).
fn select(ctx: &mut Ctx, filter: &str, args: &[Value]) -> Result<Vec<StoredEvent>, StoreError> {
    loop {
        let (good, bad) = read(&ctx.conn, filter, args)?;
        if bad.is_empty() {
            return Ok(good);
        }
        if ctx.read_only {
            for (seq, reason) in &bad {
                tracing::warn!(seq, %reason, "unreadable row in the event store (read-only: skipped)");
            }
            return Ok(good);
        }
        let tx = ctx.immediate()?;
        quarantine(&tx, &bad)?;
        tx.commit()?;
    }
}

/// As [`select`], inside the caller's transaction.
fn select_in(
    tx: &Connection,
    filter: &str,
    args: &[Value],
) -> Result<Vec<StoredEvent>, StoreError> {
    loop {
        let (good, bad) = read(tx, filter, args)?;
        if bad.is_empty() {
            return Ok(good);
        }
        quarantine(tx, &bad)?;
    }
}

fn limit(max: usize) -> Value {
    Value::Integer(i64::try_from(max).unwrap_or(i64::MAX))
}

fn now_ms() -> i64 {
    now().timestamp_millis()
}

const FREE_PENDING: &str =
    "WHERE state = 0 AND (claim_until IS NULL OR claim_until <= ?1) ORDER BY seq LIMIT ?2";

impl EventStore for SqliteStore {
    fn store(&self, events: Vec<RawEvent>) -> BoxFuture<'_, Result<(), StoreError>> {
        if self.read_only {
            return Box::pin(async { Err(StoreError::ReadOnly) });
        }
        let (reply, rx) = oneshot::channel();
        let sent = self.send(Request::Store {
            events,
            dead: None,
            reply,
        });
        Box::pin(async move {
            sent?;
            rx.await.unwrap_or(Err(StoreError::Closed))
        })
    }

    fn store_dead(
        &self,
        events: Vec<RawEvent>,
        error: String,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        if self.read_only {
            return Box::pin(async { Err(StoreError::ReadOnly) });
        }
        let (reply, rx) = oneshot::channel();
        let sent = self.send(Request::Store {
            events,
            dead: Some(error),
            reply,
        });
        Box::pin(async move {
            sent?;
            rx.await.unwrap_or(Err(StoreError::Closed))
        })
    }

    fn mark_handled(&self, ids: Vec<EventId>) -> BoxFuture<'_, Result<usize, StoreError>> {
        if self.read_only {
            return Box::pin(async { Err(StoreError::ReadOnly) });
        }
        let (reply, rx) = oneshot::channel();
        let sent = self.send(Request::Handled(ids, reply));
        Box::pin(async move {
            sent?;
            rx.await.unwrap_or(Err(StoreError::Closed))
        })
    }

    fn peek(&self, max: usize) -> BoxFuture<'_, Result<Vec<StoredEvent>, StoreError>> {
        self.job(move |ctx| {
            select(
                ctx,
                "WHERE state = ?1 ORDER BY seq LIMIT ?2",
                &[Value::Integer(STATE_PENDING), limit(max)],
            )
        })
    }

    fn claim(&self, max: usize) -> BoxFuture<'_, Result<Vec<StoredEvent>, StoreError>> {
        self.write_job(move |ctx| {
            let now = now_ms();
            let until =
                now.saturating_add(i64::try_from(ctx.lease.as_millis()).unwrap_or(i64::MAX));
            let owner = ctx.owner.clone();
            // A claim needs no fsync: if it is lost, so is its holder.
            let _ = ctx.conn.pragma_update(None, "synchronous", "NORMAL");
            let result = (|| {
                let tx = ctx.immediate()?;
                let events = select_in(&tx, FREE_PENDING, &[Value::Integer(now), limit(max)])?;
                {
                    let mut update = tx.prepare_cached(
                        "UPDATE events SET claim_owner = ?2, claim_until = ?3 WHERE seq = ?1",
                    )?;
                    for e in &events {
                        update.execute(params![e.seq, owner, until])?;
                    }
                }
                tx.commit()?;
                Ok(events)
            })();
            let _ = ctx.conn.pragma_update(None, "synchronous", "FULL");
            result
        })
    }

    fn ack(&self, ids: Vec<EventId>) -> BoxFuture<'_, Result<usize, StoreError>> {
        self.write_job(move |ctx| {
            let tx = ctx.immediate()?;
            let mut removed = 0;
            {
                let mut delete = tx.prepare_cached("DELETE FROM events WHERE id = ?1")?;
                for id in &ids {
                    removed += delete.execute([id.as_str()])?;
                }
            }
            tx.commit()?;
            Ok(removed)
        })
    }

    fn consume(&self, max: usize) -> BoxFuture<'_, Result<Vec<StoredEvent>, StoreError>> {
        self.write_job(move |ctx| {
            let tx = ctx.immediate()?;
            let events = select_in(
                &tx,
                "WHERE state IN (0, 2) AND (claim_until IS NULL OR claim_until <= ?1) ORDER BY seq LIMIT ?2",
                &[Value::Integer(now_ms()), limit(max)],
            )?;
            {
                let mut delete = tx.prepare_cached("DELETE FROM events WHERE seq = ?1")?;
                for e in &events {
                    delete.execute([e.seq])?;
                }
            }
            tx.commit()?;
            let handled = events
                .iter()
                .filter(|e| e.state == EventState::Handled)
                .count() as u64;
            ctx.handled = ctx.handled.saturating_sub(handled);
            Ok(events)
        })
    }

    fn record_failure(
        &self,
        id: EventId,
        error: String,
        dead: bool,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        self.write_job(move |ctx| {
            let tx = ctx.immediate()?;
            tx.execute(
                "UPDATE events SET attempts = attempts + 1, last_error = ?2, last_attempt_at = ?3,
                    state = CASE WHEN ?4 THEN ?5 ELSE state END, claim_owner = NULL, claim_until = NULL
                 WHERE id = ?1 AND state != ?6",
                params![
                    id.as_str(),
                    error,
                    store_time(now()),
                    dead,
                    STATE_DEAD,
                    STATE_HANDLED
                ],
            )?;
            tx.commit()?;
            Ok(())
        })
    }

    fn get(&self, id: EventId) -> BoxFuture<'_, Result<Option<StoredEvent>, StoreError>> {
        self.job(move |ctx| {
            Ok(select(ctx, "WHERE id = ?1", &[Value::Text(id.as_str().to_owned())])?.pop())
        })
    }

    fn dead_letters(&self, max: usize) -> BoxFuture<'_, Result<Vec<StoredEvent>, StoreError>> {
        self.job(move |ctx| {
            select(
                ctx,
                "WHERE state = ?1 ORDER BY seq LIMIT ?2",
                &[Value::Integer(STATE_DEAD), limit(max)],
            )
        })
    }

    fn handled(&self, max: usize) -> BoxFuture<'_, Result<Vec<StoredEvent>, StoreError>> {
        self.job(move |ctx| {
            select(
                ctx,
                "WHERE state = ?1 ORDER BY seq DESC LIMIT ?2",
                &[Value::Integer(STATE_HANDLED), limit(max)],
            )
        })
    }

    fn unreadable(&self, max: usize) -> BoxFuture<'_, Result<Vec<UnreadableRow>, StoreError>> {
        self.job(move |ctx| {
            let mut stmt = ctx.conn.prepare_cached(&format!(
                "SELECT {COLUMNS}, reason, found_at FROM unreadable ORDER BY seq LIMIT ?1"
            ))?;
            let mut rows = stmt.query([limit(max)])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                let mut columns = Vec::with_capacity(10);
                for (i, name) in COLUMN_NAMES.iter().enumerate() {
                    let bytes = match row.get_ref(i)? {
                        ValueRef::Null => None,
                        ValueRef::Integer(n) => Some(n.to_string().into_bytes()),
                        ValueRef::Real(x) => Some(x.to_string().into_bytes()),
                        ValueRef::Text(b) | ValueRef::Blob(b) => Some(b.to_vec()),
                    };
                    columns.push(((*name).to_owned(), bytes));
                }
                let id = columns[1]
                    .1
                    .as_deref()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_default();
                let found_at: String = row.get(11)?;
                out.push(UnreadableRow {
                    seq: row.get(0)?,
                    id,
                    columns,
                    reason: row.get(10)?,
                    found_at: parse_store_time(&found_at).unwrap_or_else(|_| now()),
                });
            }
            Ok(out)
        })
    }

    fn requeue(&self, id: EventId) -> BoxFuture<'_, Result<bool, StoreError>> {
        self.write_job(move |ctx| {
            // Moved to the end of the queue (a new seq), attempts reset; the
            // last error and its time stay as history.
            let tx = ctx.immediate()?;
            let dead: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM events WHERE id = ?1 AND state = ?2)",
                params![id.as_str(), STATE_DEAD],
                |r| r.get(0),
            )?;
            if !dead {
                return Ok(false);
            }
            let next: i64 = tx.query_row(
                "SELECT MAX(COALESCE((SELECT MAX(seq) FROM events), 0),
                            COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0)) + 1",
                [],
                |r| r.get(0),
            )?;
            tx.execute(
                "UPDATE events SET seq = ?2, state = ?3, attempts = 0, claim_owner = NULL, claim_until = NULL WHERE id = ?1",
                params![id.as_str(), next, STATE_PENDING],
            )?;
            tx.execute(
                "UPDATE sqlite_sequence SET seq = ?1 WHERE name = 'events'",
                [next],
            )?;
            tx.commit()?;
            ctx.raise_hwm(next);
            Ok(true)
        })
    }

    fn purge_dead(&self) -> BoxFuture<'_, Result<usize, StoreError>> {
        self.write_job(|ctx| {
            let tx = ctx.immediate()?;
            let n = tx.execute("DELETE FROM events WHERE state = ?1", [STATE_DEAD])?
                + tx.execute("DELETE FROM unreadable", [])?;
            tx.commit()?;
            Ok(n)
        })
    }

    fn stats(&self) -> BoxFuture<'_, Result<StoreStats, StoreError>> {
        self.job(|ctx| {
            let count = |n: i64| u64::try_from(n).unwrap_or(0);
            let (pending, dead, handled, claimed): (i64, i64, i64, i64) = ctx.conn.query_row(
                "SELECT COALESCE(SUM(state = 0), 0), COALESCE(SUM(state = 1), 0), COALESCE(SUM(state = 2), 0),
                        COALESCE(SUM(state = 0 AND claim_until > ?1), 0)
                 FROM events",
                [now_ms()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )?;
            let unreadable: i64 =
                ctx.conn
                    .query_row("SELECT COUNT(*) FROM unreadable", [], |r| r.get(0))?;
            Ok(StoreStats {
                pending: count(pending),
                dead: count(dead),
                handled: count(handled),
                unreadable: count(unreadable),
                claimed: count(claimed),
            })
        })
    }
}

// ------------------------------------------------------------- recovery

/// Measures a torn tail of the write-ahead log before SQLite discards it.
fn inspect_wal(path: &Path, report: &mut OpenReport) {
    let Ok(bytes) = std::fs::read(files::sibling(path, "-wal")) else {
        return;
    };
    const HEADER: usize = 32;
    const FRAME_HEADER: usize = 24;
    if bytes.len() < HEADER {
        report.torn_wal_bytes = bytes.len() as u64;
        return;
    }
    let magic = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    if magic & !1 != 0x377f_0682 {
        return;
    }
    let page_size = u32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize;
    if page_size == 0 {
        return;
    }
    let frame = FRAME_HEADER + page_size;
    let body = bytes.len() - HEADER;
    report.torn_wal_bytes = (body % frame) as u64;
    // Frames after the last commit frame (whose header holds the database
    // size in pages, nonzero only on commits) belong to no transaction.
    let frames = body / frame;
    let last_commit = (0..frames).rev().find(|&i| {
        let at = HEADER + i * frame + 4;
        u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) != 0
    });
    report.uncommitted_wal_frames = match last_commit {
        Some(i) => (frames - i - 1) as u64,
        None => frames as u64,
    };
}
