//! Everything before a store may be used: ownership, an unfinished repair, damage, the schema, a torn log.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};

use super::options::SqliteOptions;
use crate::store::error::{create_error, is_corruption, sqlite_open_error, StoreError};
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
            files::open_private(path).map_err(|e| create_error(path, "file", e))?;
            false
        }
        Found::Empty => {
            files::make_private(path)
                .map_err(|e| create_error(path, "file (making it owner-only)", e))?;
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
    let logs_before = logs_present(path);
    let mut conn = match connect(path, options) {
        Ok(conn) => conn,
        Err(ConnectError::Corrupt(e)) if exclusive => {
            repair::repair(path, &e.to_string(), presence.found.hwm, report)?;
            connect(path, options).map_err(|e| e.into_store(path))?
        }
        Err(ConnectError::Corrupt(e)) => return Err(in_use(e.to_string())),
        Err(e) => {
            if exclusive {
                forget_logs(path, logs_before);
            }
            return Err(e.into_store(path));
        }
    };
    let unclean = !presence.found.clean || (existed && presence.found.hwm.is_none());
    // After an unclean close the first process in checks; a check asked
    // for runs whoever else has the store open, but repairs only alone.
    if existed && report.damaged_file.is_none() && (options.check_integrity || exclusive && unclean)
    {
        report.integrity_checked = true;
        let damage = integrity(&conn).map_err(|e| sqlite_open_error(path, e))?;
        if let Some(reason) = damage {
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
        .map_err(|e| sqlite_open_error(path, e))?;
    if version == 1 {
        migrate_v1(&mut conn).map_err(|e| sqlite_open_error(path, e))?;
        tracing::info!(path = %path.display(), "event store upgraded to schema version {SCHEMA_VERSION}");
    } else {
        // Creating the schema (or, on an existing file, a no-op write) also
        // proves the location is writable.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| sqlite_open_error(path, e))?;
        create_schema(&tx).map_err(|e| sqlite_open_error(path, e))?;
        tx.commit().map_err(|e| sqlite_open_error(path, e))?;
    }
    let db_seq = sequence(&conn).map_err(|e| sqlite_open_error(path, e))?;
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
        .map_err(|e| sqlite_open_error(path, e))?;
    }
    Ok((conn, hwm.max(db_seq)))
}

/// Whether the store's `-wal` and `-shm` are there.
pub(super) fn logs_present(path: &Path) -> [bool; 2] {
    [files::sibling(path, "-wal"), files::sibling(path, "-shm")].map(|p| p.exists())
}

/// After an open that failed on an I/O error (a full disk: no damage),
/// removes the log and index SQLite created for it (`before`: which were
/// there), so the attempt leaves no trace. Only for a process alone with
/// the store: then they hold nothing.
pub(super) fn forget_logs(path: &Path, before: [bool; 2]) {
    for (suffix, existed) in ["-wal", "-shm"].into_iter().zip(before) {
        let file = files::sibling(path, suffix);
        if !existed && std::fs::metadata(&file).is_ok_and(|m| suffix == "-shm" || m.len() == 0) {
            let _ = std::fs::remove_file(file);
        }
    }
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
            ConnectError::Corrupt(e) => sqlite_open_error(path, e),
            ConnectError::Other(e) => e,
        }
    }
}

fn connect(path: &Path, options: &SqliteOptions) -> Result<Connection, ConnectError> {
    let wrap = |e: rusqlite::Error| {
        if is_corruption(&e) {
            ConnectError::Corrupt(e)
        } else {
            ConnectError::Other(sqlite_open_error(path, e))
        }
    };
    let conn = Connection::open(path).map_err(wrap)?;
    let setup = || -> rusqlite::Result<i64> {
        conn.busy_timeout(Duration::from_secs(5))?;
        // Reads the schema: a damaged one is found here, to be repaired.
        conn.query_row("SELECT COUNT(*) FROM sqlite_master", [], |_| Ok(()))?;
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

/// `Ok(Some(reason))` when the file is damaged; `Err` when SQLite could not
/// read it for another reason (an I/O failure is no damage).
fn integrity(conn: &Connection) -> rusqlite::Result<Option<String>> {
    let damage = |e: rusqlite::Error| {
        if is_corruption(&e) {
            Ok(Some(e.to_string()))
        } else {
            Err(e)
        }
    };
    let result: String = match conn.query_row("PRAGMA quick_check(1)", [], |r| r.get(0)) {
        Ok(result) => result,
        Err(e) => return damage(e),
    };
    if result != "ok" {
        return Ok(Some(format!("integrity check: {result}")));
    }
    // The table must also be fully readable.
    match conn.query_row(
        "SELECT COUNT(*), COALESCE(MAX(seq), 0) FROM events",
        [],
        |_| Ok(()),
    ) {
        Ok(()) => Ok(None),
        Err(e) => damage(e),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_tail_and_frames_after_the_last_commit_are_measured() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.db");
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        create_schema(&conn).unwrap();
        let wal = files::sibling(&path, "-wal");
        let mut report = OpenReport::default();
        inspect_wal(&path, &mut report);
        assert_eq!(
            (report.torn_wal_bytes, report.uncommitted_wal_frames),
            (0, 0)
        );
        // Half a frame more at the end.
        let mut bytes = std::fs::read(&wal).unwrap();
        bytes.extend(vec![0u8; 100]);
        std::fs::write(&wal, &bytes).unwrap();
        let mut report = OpenReport::default();
        inspect_wal(&path, &mut report);
        assert_eq!(report.torn_wal_bytes, 100);
        drop(conn);
    }

    #[test]
    fn a_sound_store_passes_the_integrity_check() {
        let conn = Connection::open_in_memory().unwrap();
        create_schema(&conn).unwrap();
        assert_eq!(integrity(&conn).unwrap(), None);
        assert_eq!(sequence(&conn).unwrap(), 0);
    }

    #[test]
    fn a_newer_schema_is_refused_by_connect() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
                .unwrap();
        }
        match connect(&path, &SqliteOptions::default()) {
            Err(ConnectError::Other(StoreError::NewerSchema { found, .. })) => {
                assert_eq!(found, SCHEMA_VERSION + 1)
            }
            Err(ConnectError::Other(e)) => panic!("{e:?}"),
            Err(ConnectError::Corrupt(e)) => panic!("{e:?}"),
            Ok(_) => panic!("opened"),
        }
    }

    #[test]
    fn missing_events_are_counted_against_the_high_water_mark() {
        let mut report = OpenReport::default();
        assert_eq!(note_missing(Path::new("x"), Some(3), 5, &mut report), 5);
        assert_eq!(report.acknowledged_missing, 0);
        assert_eq!(note_missing(Path::new("x"), Some(9), 5, &mut report), 9);
        assert_eq!(report.acknowledged_missing, 4);
        assert_eq!(report.missing_seqs, Some((6, 9)));
    }
}
