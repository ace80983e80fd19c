//! Whose file is it: what a path holds and whether it is an event store, found before anything is written.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use super::error::{open_error, StoreError};
use super::files::sibling;
use super::schema::{APPLICATION_ID, OWNER, SQLITE_MAGIC, V1_TABLE};

/// What a path holds, found without writing anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Found {
    /// Nothing: a store may be created.
    Missing,
    /// An empty file or an empty SQLite database: it holds nothing and may
    /// become a store.
    Empty,
    /// An event store (`legacy`: version 1, without the ownership marks).
    Store { legacy: bool },
    /// An event store SQLite cannot read (its ownership shown by the raw
    /// header), to be repaired.
    Damaged { reason: String },
}

fn not_a_store(path: &Path, reason: impl Into<String>) -> StoreError {
    StoreError::NotAStore {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

/// Finds out, without writing, what `path` holds and whether it is ours.
pub(super) fn inspect(path: &Path) -> Result<Found, StoreError> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Found::Missing),
        Err(e) => return Err(open_error(path, e)),
    };
    if !meta.is_file() {
        return Err(not_a_store(path, "it is not a regular file"));
    }
    let wal_len = std::fs::metadata(sibling(path, "-wal")).map_or(0, |m| m.len());
    if meta.len() == 0 && wal_len == 0 {
        return Ok(Found::Empty);
    }
    let mut header = Vec::with_capacity(100);
    File::open(path)
        .and_then(|f| f.take(100).read_to_end(&mut header))
        .map_err(|e| open_error(path, e))?;
    let raw_id = header
        .get(68..72)
        .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]));
    if header.starts_with(SQLITE_MAGIC) && !header_is_sound(&header) {
        return if raw_id == Some(APPLICATION_ID) {
            Ok(Found::Damaged {
                reason: "its header is damaged".to_owned(),
            })
        } else {
            Err(not_a_store(
                path,
                "its SQLite header is damaged and does not show an event store",
            ))
        };
    }
    if !header.starts_with(SQLITE_MAGIC) && meta.len() > 0 {
        return if raw_id == Some(APPLICATION_ID) {
            Ok(Found::Damaged {
                reason: "its header is damaged".to_owned(),
            })
        } else {
            Err(not_a_store(path, "it is not a SQLite database"))
        };
    }
    match read_identity(path) {
        Ok(identity) => identity.judge(path),
        Err(e) if raw_id == Some(APPLICATION_ID) => Ok(Found::Damaged {
            reason: e.to_string(),
        }),
        Err(e) => Err(not_a_store(
            path,
            format!("SQLite cannot read it ({e}) and its header does not show an event store"),
        )),
    }
}

/// The fixed fields of a SQLite header hold what SQLite writes there.
fn header_is_sound(header: &[u8]) -> bool {
    if header.len() < 100 {
        return false;
    }
    let page_size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65_536,
        n => u32::from(n),
    };
    let schema_format = u32::from_be_bytes([header[44], header[45], header[46], header[47]]);
    let encoding = u32::from_be_bytes([header[56], header[57], header[58], header[59]]);
    page_size.is_power_of_two()
        && page_size >= 512
        && matches!(header[18], 1 | 2)
        && matches!(header[19], 1 | 2)
        && header[21..24] == [64, 32, 32]
        && (schema_format == 0 || (1..=4).contains(&schema_format))
        && (encoding == 0 || (1..=3).contains(&encoding))
}

struct Identity {
    application_id: i32,
    user_version: i64,
    marker: bool,
    tables: Vec<(String, String)>,
}

impl Identity {
    fn judge(self, path: &Path) -> Result<Found, StoreError> {
        let user_tables: Vec<&(String, String)> = self
            .tables
            .iter()
            .filter(|(name, _)| !name.starts_with("sqlite_"))
            .collect();
        if self.application_id == APPLICATION_ID || self.marker {
            return Ok(Found::Store { legacy: false });
        }
        if self.application_id != 0 {
            return Err(not_a_store(
                path,
                format!(
                    "it is the SQLite database of another application (application_id {:#x})",
                    self.application_id
                ),
            ));
        }
        if user_tables.is_empty() {
            return Ok(Found::Empty);
        }
        let legacy = self.user_version == 1
            && user_tables.len() == 1
            && normalize(&user_tables[0].1) == normalize(V1_TABLE);
        if legacy {
            return Ok(Found::Store { legacy: true });
        }
        let names: Vec<&str> = user_tables
            .iter()
            .map(|(n, _)| n.as_str())
            .take(5)
            .collect();
        Err(not_a_store(
            path,
            format!(
                "it is a SQLite database of another application (tables: {})",
                names.join(", ")
            ),
        ))
    }
}

fn normalize(sql: &str) -> String {
    sql.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Reads the identity through SQLite, read-only (the log included).
fn read_identity(path: &Path) -> rusqlite::Result<Identity> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let application_id: i32 = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
    let user_version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let mut stmt =
        conn.prepare("SELECT name, COALESCE(sql, '') FROM sqlite_master WHERE type = 'table'")?;
    let tables = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let marker = tables.iter().any(|(n, _)| n == "events_store_meta")
        && conn
            .query_row(
                "SELECT value FROM events_store_meta WHERE key = 'owner'",
                [],
                |r| r.get::<_, String>(0),
            )
            .is_ok_and(|v| v == OWNER);
    Ok(Identity {
        application_id,
        user_version,
        marker,
        tables,
    })
}
