//! The embedded durable store on SQLite.

use std::path::{Path, PathBuf};
use std::sync::{mpsc, Mutex};

use rusqlite::{params, Connection};
use tokio::sync::oneshot;

use super::{EventStore, StoreError, StoreStats, StoredEvent};
use crate::envelope::{now, EventId, RawEvent};
use crate::publisher::BoxFuture;
use crate::wire::{format_time, parse_time};

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: i64 = 1;

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

type Reply = oneshot::Sender<Result<(), StoreError>>;

enum Request {
    Store(Vec<RawEvent>, Reply),
    Job(Job),
}

/// The embedded durable store on SQLite (see the module docs).
pub struct SqliteStore {
    path: PathBuf,
    report: OpenReport,
    sender: Mutex<Option<mpsc::Sender<Request>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .field("report", &self.report)
            .finish_non_exhaustive()
    }
}

/// Options of [`SqliteStore::open_with`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SqliteOptions {
    /// The largest the database file may grow; a store beyond it fails with
    /// SQLite's "database or disk is full", as a full disk would.
    pub max_size_bytes: Option<u64>,
}

/// What opening the store found and did about damage.
///
/// SQLite itself discards a torn write at the end of the write-ahead log (a
/// partial frame, or frames of a transaction that never committed): such a
/// write belonged to a `store` that had not returned, so nothing acknowledged
/// is lost. The report says how much was discarded. A damaged database file
/// (failed integrity check) is moved aside and every readable row is copied
/// into a fresh store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenReport {
    /// Bytes of a partial frame at the end of the write-ahead log.
    pub torn_wal_bytes: u64,
    /// Complete log frames after the last commit (an unfinished transaction).
    pub uncommitted_wal_frames: u64,
    /// Where the damaged file was moved, when it failed its integrity check.
    pub damaged_file: Option<PathBuf>,
    /// Rows copied out of the damaged file.
    pub rows_recovered: u64,
    /// Rows of the damaged file that could not be read.
    pub rows_lost: u64,
}

impl OpenReport {
    /// Whether anything was found wrong.
    pub fn is_clean(&self) -> bool {
        *self == OpenReport::default()
    }
}

/// Most requests one group commit takes.
const MAX_GROUP: usize = 4096;

fn open_error(path: &Path, source: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Open {
        path: path.to_owned(),
        source: Box::new(source),
    }
}

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        occurred_on TEXT NOT NULL,
        attributes TEXT NOT NULL,
        stored_at TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        last_attempt_at TEXT,
        dead INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX IF NOT EXISTS events_by_state ON events (dead, seq);";

impl SqliteStore {
    /// Opens (creating it and its folder if needed) the store at `path`.
    ///
    /// Fails with a clear error when the path cannot be written or the file
    /// has a newer schema. Opening checks that the store can be written, so
    /// a read-only location is reported here, at start-up. Damage from a
    /// crash is repaired and described in [`SqliteStore::open_report`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(path, SqliteOptions::default())
    }

    /// Opens the store with options.
    pub fn open_with(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self, StoreError> {
        let path = path.as_ref().to_owned();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| open_error(&path, e))?;
        }
        let mut report = OpenReport::default();
        inspect_wal(&path, &mut report);
        let conn = match Self::connect(&path, &options) {
            Ok(conn) if integrity_ok(&conn) => conn,
            Ok(conn) => {
                drop(conn);
                salvage(&path, &options, &mut report)?
            }
            Err(StoreError::Open { source, .. }) if is_corruption(&*source) => {
                salvage(&path, &options, &mut report)?
            }
            Err(e) => return Err(e),
        };
        if !report.is_clean() {
            tracing::warn!(path = %path.display(), ?report, "event store repaired damage from a crash");
        }
        let (sender, receiver) = mpsc::channel();
        let writer = std::thread::Builder::new()
            .name("events-store".to_owned())
            .spawn(move || writer_loop(conn, receiver))
            .map_err(|e| open_error(&path, e))?;
        tracing::debug!(path = %path.display(), "event store opened");
        Ok(SqliteStore {
            path,
            report,
            sender: Mutex::new(Some(sender)),
            writer: Mutex::new(Some(writer)),
        })
    }

    fn connect(path: &Path, options: &SqliteOptions) -> Result<Connection, StoreError> {
        let conn = Connection::open(path).map_err(|e| open_error(path, e))?;
        let setup = || -> rusqlite::Result<i64> {
            conn.busy_timeout(std::time::Duration::from_secs(5))?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "FULL")?;
            if let Some(max) = options.max_size_bytes {
                let page_size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
                let pages = i64::try_from(max).unwrap_or(i64::MAX) / page_size.max(1);
                conn.pragma_update(None, "max_page_count", pages.max(1))?;
            }
            conn.query_row("PRAGMA user_version", [], |r| r.get(0))
        };
        let version = setup().map_err(|e| open_error(path, e))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema {
                path: path.to_owned(),
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        // Creating the schema (or, on an existing file, a no-op write) also
        // proves the location is writable.
        conn.execute_batch(&format!(
            "BEGIN IMMEDIATE; {SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
        ))
        .map_err(|e| open_error(path, e))?;
        Ok(conn)
    }

    /// What opening found and repaired.
    pub fn open_report(&self) -> &OpenReport {
        &self.report
    }

    /// The store's file.
    pub fn path(&self) -> &Path {
        &self.path
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
        f: impl FnOnce(&mut Connection) -> Result<R, StoreError> + Send + 'static,
    ) -> BoxFuture<'_, Result<R, StoreError>> {
        let (tx, rx) = oneshot::channel();
        let sent = self.send(Request::Job(Box::new(move |conn| {
            let _ = tx.send(f(conn));
        })));
        Box::pin(async move {
            sent?;
            rx.await.unwrap_or(Err(StoreError::Closed))
        })
    }

    /// Stops the writer thread after the requests already sent; later calls
    /// fail with [`StoreError::Closed`].
    pub fn close(&self) {
        self.sender.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(writer) = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = writer.join();
        }
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.close();
    }
}

fn writer_loop(mut conn: Connection, receiver: mpsc::Receiver<Request>) {
    while let Ok(first) = receiver.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_GROUP {
            match receiver.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let mut stores: Vec<(Vec<RawEvent>, Reply)> = Vec::new();
        for request in batch {
            match request {
                Request::Store(events, reply) => stores.push((events, reply)),
                Request::Job(job) => {
                    // Keep order: stores sent before this job commit first.
                    commit_stores(&mut conn, std::mem::take(&mut stores));
                    job(&mut conn);
                }
            }
        }
        commit_stores(&mut conn, stores);
    }
}

/// Writes every waiting store request in one transaction (one fsync).
fn commit_stores(conn: &mut Connection, stores: Vec<(Vec<RawEvent>, Reply)>) {
    if stores.is_empty() {
        return;
    }
    let result = (|| -> rusqlite::Result<()> {
        let tx = conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO events (id, name, occurred_on, attributes, stored_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            let stored_at = format_time(now());
            for (events, _) in &stores {
                for e in events {
                    insert.execute(params![
                        e.id.as_str(),
                        e.name,
                        format_time(e.occurred_on),
                        e.attributes,
                        stored_at
                    ])?;
                }
            }
        }
        tx.commit()
    })();
    match result {
        Ok(()) => {
            for (_, reply) in stores {
                let _ = reply.send(Ok(()));
            }
        }
        Err(group_error) if stores.len() > 1 => {
            // One bad request must not fail its neighbours: retry each alone.
            tracing::warn!(error = %group_error, requests = stores.len(), "group commit failed; retrying requests one by one");
            for store in stores {
                commit_stores(conn, vec![store]);
            }
        }
        Err(e) => {
            for (_, reply) in stores {
                let _ = reply.send(Err(StoreError::Sqlite(clone_error(&e))));
            }
        }
    }
}

fn clone_error(e: &rusqlite::Error) -> rusqlite::Error {
    match e {
        rusqlite::Error::SqliteFailure(code, msg) => {
            rusqlite::Error::SqliteFailure(*code, msg.clone())
        }
        other => rusqlite::Error::ToSqlConversionFailure(other.to_string().into()),
    }
}

const COLUMNS: &str = "seq, id, name, occurred_on, attributes, stored_at, attempts, last_error, last_attempt_at, dead";

fn row_to_event(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<StoredEvent, StoreError>> {
    let seq: i64 = row.get(0)?;
    let id: String = row.get(1)?;
    let name: String = row.get(2)?;
    let occurred_on: String = row.get(3)?;
    let attributes: String = row.get(4)?;
    let stored_at: String = row.get(5)?;
    let attempts: i64 = row.get(6)?;
    let last_error: Option<String> = row.get(7)?;
    let last_attempt_at: Option<String> = row.get(8)?;
    let dead: bool = row.get(9)?;
    let time = |text: &str| parse_time(text).map_err(|reason| StoreError::Corrupt { seq, reason });
    Ok((|| {
        Ok(StoredEvent {
            event: RawEvent {
                id: EventId::from(id),
                name,
                occurred_on: time(&occurred_on)?,
                attributes,
            },
            seq,
            stored_at: time(&stored_at)?,
            attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
            last_error,
            last_attempt_at: last_attempt_at.as_deref().map(time).transpose()?,
            dead,
        })
    })())
}

fn select(
    conn: &Connection,
    filter: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<StoredEvent>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM events {filter}"))?;
    let rows = stmt.query_map(args, row_to_event)?;
    let mut out = Vec::new();
    for row in rows {
        out.push(row??);
    }
    Ok(out)
}

fn limit(max: usize) -> i64 {
    i64::try_from(max).unwrap_or(i64::MAX)
}

impl EventStore for SqliteStore {
    fn store(&self, events: Vec<RawEvent>) -> BoxFuture<'_, Result<(), StoreError>> {
        let (tx, rx) = oneshot::channel();
        let sent = self.send(Request::Store(events, tx));
        Box::pin(async move {
            sent?;
            rx.await.unwrap_or(Err(StoreError::Closed))
        })
    }

    fn peek(&self, max: usize) -> BoxFuture<'_, Result<Vec<StoredEvent>, StoreError>> {
        self.job(move |conn| select(conn, "WHERE dead = 0 ORDER BY seq LIMIT ?1", [limit(max)]))
    }

    fn ack(&self, ids: Vec<EventId>) -> BoxFuture<'_, Result<usize, StoreError>> {
        self.job(move |conn| {
            let tx = conn.transaction()?;
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
        self.job(move |conn| {
            let tx = conn.transaction()?;
            let events = select(&tx, "WHERE dead = 0 ORDER BY seq LIMIT ?1", [limit(max)])?;
            {
                let mut delete = tx.prepare_cached("DELETE FROM events WHERE seq = ?1")?;
                for e in &events {
                    delete.execute([e.seq])?;
                }
            }
            tx.commit()?;
            Ok(events)
        })
    }

    fn record_failure(
        &self,
        id: EventId,
        error: String,
        dead: bool,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        self.job(move |conn| {
            conn.execute(
                "UPDATE events SET attempts = attempts + 1, last_error = ?2, last_attempt_at = ?3, dead = (dead OR ?4) WHERE id = ?1",
                params![id.as_str(), error, format_time(now()), dead],
            )?;
            Ok(())
        })
    }

    fn get(&self, id: EventId) -> BoxFuture<'_, Result<Option<StoredEvent>, StoreError>> {
        self.job(move |conn| Ok(select(conn, "WHERE id = ?1", [id.as_str()])?.pop()))
    }

    fn dead_letters(&self, max: usize) -> BoxFuture<'_, Result<Vec<StoredEvent>, StoreError>> {
        self.job(move |conn| select(conn, "WHERE dead = 1 ORDER BY seq LIMIT ?1", [limit(max)]))
    }

    fn requeue(&self, id: EventId) -> BoxFuture<'_, Result<bool, StoreError>> {
        self.job(move |conn| {
            // Moved to the end of the queue (a new seq), attempts reset; the
            // last error and its time stay as history.
            let tx = conn.transaction()?;
            let moved = tx.execute(
                "CREATE TEMP TABLE IF NOT EXISTS requeued AS SELECT * FROM events WHERE 0",
                [],
            )
            .and_then(|_| tx.execute("DELETE FROM temp.requeued", []))
            .and_then(|_| {
                tx.execute(
                    "INSERT INTO temp.requeued SELECT * FROM events WHERE id = ?1 AND dead = 1",
                    [id.as_str()],
                )
            })?;
            if moved == 0 {
                return Ok(false);
            }
            tx.execute("DELETE FROM events WHERE id = ?1", [id.as_str()])?;
            tx.execute(
                "INSERT INTO events (id, name, occurred_on, attributes, stored_at, attempts, last_error, last_attempt_at, dead)
                 SELECT id, name, occurred_on, attributes, stored_at, 0, last_error, last_attempt_at, 0 FROM temp.requeued",
                [],
            )?;
            tx.execute("DELETE FROM temp.requeued", [])?;
            tx.commit()?;
            Ok(true)
        })
    }

    fn purge_dead(&self) -> BoxFuture<'_, Result<usize, StoreError>> {
        self.job(|conn| Ok(conn.execute("DELETE FROM events WHERE dead = 1", [])?))
    }

    fn stats(&self) -> BoxFuture<'_, Result<StoreStats, StoreError>> {
        self.job(|conn| {
            let (pending, dead): (i64, i64) = conn.query_row(
                "SELECT COALESCE(SUM(dead = 0), 0), COALESCE(SUM(dead = 1), 0) FROM events",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            Ok(StoreStats {
                pending: pending.max(0) as u64,
                dead: dead.max(0) as u64,
            })
        })
    }
}

// ------------------------------------------------------------- recovery

/// Measures a torn tail of the write-ahead log before SQLite discards it.
fn inspect_wal(path: &Path, report: &mut OpenReport) {
    let mut wal_path = path.as_os_str().to_owned();
    wal_path.push("-wal");
    let Ok(bytes) = std::fs::read(&wal_path) else {
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

fn integrity_ok(conn: &Connection) -> bool {
    let check = || -> rusqlite::Result<bool> {
        let result: String = conn.query_row("PRAGMA quick_check(1)", [], |r| r.get(0))?;
        // The table must also be fully readable.
        conn.query_row(
            "SELECT COUNT(*), COALESCE(MAX(seq), 0) FROM events",
            [],
            |_| Ok(()),
        )?;
        Ok(result == "ok")
    };
    check().unwrap_or(false)
}

fn is_corruption(error: &(dyn std::error::Error + 'static)) -> bool {
    match error.downcast_ref::<rusqlite::Error>() {
        Some(rusqlite::Error::SqliteFailure(e, _)) => matches!(
            e.code,
            rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase
        ),
        _ => false,
    }
}

/// Moves a damaged file aside and copies every readable row into a new one.
fn salvage(
    path: &Path,
    options: &SqliteOptions,
    report: &mut OpenReport,
) -> Result<Connection, StoreError> {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ");
    let mut damaged = path.as_os_str().to_owned();
    damaged.push(format!(".damaged-{stamp}"));
    let damaged = PathBuf::from(damaged);
    for suffix in ["", "-wal", "-shm"] {
        let mut from = path.as_os_str().to_owned();
        from.push(suffix);
        let mut to = damaged.as_os_str().to_owned();
        to.push(suffix);
        if std::path::Path::new(&from).exists() {
            std::fs::rename(&from, &to).map_err(|e| open_error(path, e))?;
        }
    }
    tracing::error!(path = %path.display(), damaged = %damaged.display(), "event store failed its integrity check; recovering readable rows");
    let mut fresh = SqliteStore::connect(path, options)?;
    let (recovered, lost) =
        copy_readable_rows(&damaged, &mut fresh).map_err(|source| StoreError::Open {
            path: path.to_owned(),
            source,
        })?;
    report.damaged_file = Some(damaged);
    report.rows_recovered = recovered;
    report.rows_lost = lost;
    Ok(fresh)
}

/// A working copy of the damaged file that SQLite will open: whole pages
/// only, and the header's page count cleared so SQLite counts the pages the
/// file really has (a cut file otherwise fails before any row is read).
fn readable_copy(damaged: &Path) -> std::io::Result<PathBuf> {
    let mut bytes = std::fs::read(damaged)?;
    let mut copy = damaged.as_os_str().to_owned();
    copy.push(".reading");
    let copy = PathBuf::from(copy);
    if bytes.len() >= 100 && bytes.starts_with(b"SQLite format 3\0") {
        let page_size = match u16::from_be_bytes([bytes[16], bytes[17]]) {
            1 => 65_536,
            n => usize::from(n),
        };
        if page_size >= 512 {
            bytes.truncate(bytes.len() / page_size * page_size);
        }
        bytes[28..32].copy_from_slice(&[0; 4]);
    }
    std::fs::write(&copy, bytes)?;
    // The log of the damaged file, if any, goes with the copy.
    let mut wal = damaged.as_os_str().to_owned();
    wal.push("-wal");
    let mut copy_wal = copy.as_os_str().to_owned();
    copy_wal.push("-wal");
    if Path::new(&wal).exists() {
        std::fs::copy(&wal, &copy_wal)?;
    }
    Ok(copy)
}

/// Copies row by row, so one unreadable page costs only its own rows.
fn copy_readable_rows(
    damaged: &Path,
    to: &mut Connection,
) -> Result<(u64, u64), Box<dyn std::error::Error + Send + Sync>> {
    let from = readable_copy(damaged)?;
    let result = copy_rows(&from, to);
    for suffix in ["", "-wal", "-shm"] {
        let mut file = from.as_os_str().to_owned();
        file.push(suffix);
        let _ = std::fs::remove_file(file);
    }
    Ok(result?)
}

fn copy_rows(from: &Path, to: &mut Connection) -> rusqlite::Result<(u64, u64)> {
    let source = Connection::open(from)?;
    let highest: i64 = source
        .query_row(
            "SELECT seq FROM sqlite_sequence WHERE name = 'events'",
            [],
            |r| r.get(0),
        )
        .or_else(|_| source.query_row("SELECT MAX(seq) FROM events", [], |r| r.get(0)))
        .unwrap_or(0);
    let tx = to.transaction()?;
    let (mut recovered, mut lost) = (0u64, 0u64);
    {
        let mut read = source.prepare(&format!("SELECT {COLUMNS} FROM events WHERE seq = ?1"))?;
        let mut write = tx.prepare(&format!("INSERT OR IGNORE INTO events ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"))?;
        for seq in 1..=highest {
            let row = read.query_row([seq], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, i64>(6)?,
                    r.get::<_, Option<String>>(7)?,
                    r.get::<_, Option<String>>(8)?,
                    r.get::<_, bool>(9)?,
                ))
            });
            match row {
                Ok(row) => {
                    write.execute(params![
                        row.0, row.1, row.2, row.3, row.4, row.5, row.6, row.7, row.8, row.9
                    ])?;
                    recovered += 1;
                }
                Err(rusqlite::Error::QueryReturnedNoRows) => {}
                Err(_) => lost += 1,
            }
        }
    }
    tx.commit()?;
    Ok((recovered, lost))
}
