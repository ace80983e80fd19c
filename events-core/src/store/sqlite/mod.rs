//! The embedded durable store on SQLite: opening, closing, and handing requests to its writer thread.

use std::path::{Path, PathBuf};
use std::sync::{mpsc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use tokio::sync::oneshot;

use super::error::{create_error, is_corruption, open_error, sqlite_open_error, StoreError};
use super::files;
use super::ownership::{self, Found};
use super::presence::{self, Presence, StateWriter};
use super::report::{CheckReport, OpenReport};
use super::schema::{
    columns, has_local_column, has_trace_column, SCHEMA_VERSION, STATE_HANDLED, STATE_PENDING,
};
use crate::publisher::BoxFuture;

mod open;
mod options;
mod queries;
mod rows;
mod writer;

pub use options::SqliteOptions;

use open::{forget_logs, logs_present, note_missing, prepare, sequence};
use rows::decode_row;
use writer::{writer_loop, Ctx, Request};

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
    ///
    /// # Errors
    ///
    /// - [`StoreError::NotAStore`]: the file is something else (left
    ///   untouched).
    /// - [`StoreError::Create`] / [`StoreError::Open`]: the folder or the
    ///   file cannot be created, opened or written (with the OS reason as
    ///   the source; a full disk is said so).
    /// - [`StoreError::NewerSchema`]: a newer build wrote the file.
    /// - [`StoreError::Damaged`]: damage that cannot be repaired now
    ///   (another process has the store open, or an interrupted repair).
    /// - [`StoreError::Sqlite`]: SQLite failed otherwise.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(path, SqliteOptions::default())
    }

    /// Opens the store with options.
    ///
    /// # Errors
    ///
    /// As [`SqliteStore::open`]; with
    /// [`check_integrity`](SqliteOptions::check_integrity), damage the full
    /// check finds and cannot repair is [`StoreError::Damaged`].
    pub fn open_with(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self, StoreError> {
        let path = path.as_ref().to_owned();
        // Refuse what is not ours before leaving any trace beside it.
        ownership::inspect(&path)?;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            files::create_dir(parent).map_err(|e| create_error(parent, "folder", e))?;
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
        presence::mark_open(&presence, Some(hwm));
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
    ///
    /// # Errors
    ///
    /// As [`SqliteStore::open`] for a file that is not a store (an empty
    /// one included), cannot be opened or has a newer schema;
    /// [`StoreError::Damaged`] when a repair was interrupted or the file
    /// needs one or an upgrade (a read-only open changes nothing); a
    /// missing file is [`StoreError::Open`].
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_owned();
        ownership::inspect(&path)?;
        let mut presence = Presence::enter(&path, true)?;
        let result = (|| {
            if files::sibling(&path, ".repair").exists() {
                return Err(StoreError::Damaged {
                    path: path.clone(),
                    reason: "a repair was interrupted".to_owned(),
                    action: "open it with a program that writes to it (or `events check --repair`) to finish the repair".to_owned(),
                });
            }
            match ownership::inspect(&path)? {
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
                    let logs_before = logs_present(&path);
                    let forget = |e: StoreError| {
                        if presence.exclusive() && matches!(e, StoreError::Open { .. }) {
                            forget_logs(&path, logs_before);
                        }
                        e
                    };
                    let conn = Connection::open_with_flags(
                        &path,
                        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                    )
                    .map_err(|e| forget(sqlite_open_error(&path, e)))?;
                    let setup = || -> rusqlite::Result<i64> {
                        conn.busy_timeout(Duration::from_secs(5))?;
                        conn.query_row("SELECT COUNT(*) FROM sqlite_master", [], |_| Ok(()))?;
                        conn.query_row("PRAGMA user_version", [], |r| r.get(0))
                    };
                    let version = setup().map_err(|e| {
                        if is_corruption(&e) {
                            StoreError::Damaged {
                                path: path.clone(),
                                reason: e.to_string(),
                                action: "it was left untouched; `events check --repair` (or the next program that opens it for writing, alone) repairs it".to_owned(),
                            }
                        } else {
                            forget(sqlite_open_error(&path, e))
                        }
                    })?;
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
        mut report: OpenReport,
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
        let local_column = has_local_column(&conn).unwrap_or(false);
        let trace_column = has_trace_column(&conn).unwrap_or(false);
        // Opened alone, by a writer: the local-mode events pending now were
        // left by runs that ended (nobody else has the store open).
        let unfinished = if !read_only && presence.alone && local_column {
            conn.query_row(
                "SELECT COALESCE(MAX(seq), 0), COUNT(*) FROM events WHERE state = ?1 AND local = 1",
                [STATE_PENDING],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
            )
            .unwrap_or((0, 0))
        } else {
            (0, 0)
        };
        report.unfinished_local = u64::try_from(unfinished.1).unwrap_or(0);
        if unfinished.1 > 0 {
            tracing::warn!(
                path = %path.display(),
                events = unfinished.1,
                "local-mode events an earlier run stored and never finished handling; a local-mode bus runs their handlers now"
            );
        }
        let ctx = Ctx {
            conn,
            read_only,
            lease: options.claim_lease,
            clock: options.clock.clone(),
            retention: options.retention,
            owner: uuid::Uuid::new_v4().to_string(),
            handled: u64::try_from(handled).unwrap_or(0),
            last_age_prune: None,
            state,
            hwm,
            saw_corruption: false,
            not_durable: None,
            unfinished_up_to: unfinished.0,
            local_column,
            trace_column,
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
    ///
    /// # Errors
    ///
    /// Damage is in the [`CheckReport`], not an error; the error is a
    /// failure to run the check: [`StoreError::Sqlite`], or
    /// [`StoreError::Closed`].
    pub fn check(&self) -> BoxFuture<'_, Result<CheckReport, StoreError>> {
        self.job(|ctx| {
            let mut report = CheckReport::default();
            let mut stmt = ctx.conn.prepare("PRAGMA integrity_check")?;
            let messages = stmt
                .query_map([], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            report.integrity = messages.into_iter().filter(|m| m != "ok").collect();
            let mut rows = ctx
                .conn
                .prepare(&format!("SELECT {} FROM events", columns(ctx.trace_column)))?;
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
        self.job(move |ctx| {
            ctx.durable()?;
            f(ctx)
        })
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
