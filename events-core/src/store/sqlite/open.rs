//! Everything before a store may be used: ownership, an unfinished repair, damage, the schema, a torn log.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};

use super::options::SqliteOptions;
use crate::store::error::{is_corruption, open_error, StoreError};
use crate::store::files;
use crate::store::ownership::{self, Found};
use crate::store::presence::Presence;
use crate::store::repair;
use crate::store::report::OpenReport;
use crate::store::schema::{create_schema, migrate_v1, SCHEMA_VERSION};

/// Everything before the store may be used: ownership, an unfinished
/// repair, damage, the schema. Returns the connection and the high-water
/// mark.
pub(super) fn prepare(
    path: &Path,
    options: &SqliteOptions,
    presence: &Presence,
    report: &mut OpenReport,
) -> Result<(Connection, i64), StoreError> {
    let exclusive = presence.exclusive();
    if exclusive {
        repair::finish_interrupted(path, report)?;
    }
    let found = ownership::inspect(path)?;
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
pub(super) fn note_missing(
    path: &Path,
    hwm: Option<i64>,
    db_seq: i64,
    report: &mut OpenReport,
) -> i64 {
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

pub(super) fn sequence(conn: &Connection) -> rusqlite::Result<i64> {
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

/// Measures a torn tail of the write-ahead log before SQLite discards it.
pub(super) fn inspect_wal(path: &Path, report: &mut OpenReport) {
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
