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
///
/// Ownership is decided from the file's bytes (its header, and the newest
/// committed first page in its write-ahead log) before SQLite opens it: a
/// file another application owns is refused without a `-shm` or `-wal`
/// appearing beside it. Only a file whose header shows no application at
/// all (an empty database, a version 1 store, an unmarked foreign one) is
/// read through SQLite, in a way that creates nothing. A symbolic link is
/// followed only to a file that is already an event store.
pub(super) fn inspect(path: &Path) -> Result<Found, StoreError> {
    let link = match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            Some(std::fs::read_link(path).map_err(|e| open_error(path, e))?)
        }
        _ => None,
    };
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return match link {
                Some(target) => Err(not_a_store(
                    path,
                    format!(
                        "it is a symbolic link to `{}`, which does not exist; a link is followed \
                         only to an existing event store, never created into",
                        target.display()
                    ),
                )),
                None => Ok(Found::Missing),
            };
        }
        Err(e) => return Err(open_error(path, e)),
    };
    if !meta.is_file() {
        return Err(not_a_store(path, "it is not a regular file"));
    }
    let found = inspect_file(path, meta.len())?;
    match (link, &found) {
        (Some(target), Found::Empty) => Err(not_a_store(
            path,
            format!(
                "it is a symbolic link to `{}`, an empty file, not an event store; a link is \
                 followed only to an existing event store, never created into",
                target.display()
            ),
        )),
        _ => Ok(found),
    }
}

fn application_id(header: &[u8]) -> Option<i32> {
    header
        .get(68..72)
        .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn inspect_file(path: &Path, len: u64) -> Result<Found, StoreError> {
    let wal = sibling(path, "-wal");
    let wal_len = std::fs::metadata(&wal).map_or(0, |m| m.len());
    if len == 0 && wal_len == 0 {
        return Ok(Found::Empty);
    }
    let mut header = Vec::with_capacity(100);
    File::open(path)
        .and_then(|f| f.take(100).read_to_end(&mut header))
        .map_err(|e| open_error(path, e))?;
    let logged = if wal_len > 0 {
        newest_first_page(&wal)
    } else {
        None
    };
    let raw_id = application_id(&header);
    let logged_id = logged.as_deref().and_then(application_id);
    if raw_id == Some(APPLICATION_ID) || logged_id == Some(APPLICATION_ID) {
        // Ours by its bytes. SQLite's own reading (at connect) finds any
        // other damage; repair happens there.
        if len > 0 && !(header.starts_with(SQLITE_MAGIC) && header_is_sound(&header)) {
            return Ok(Found::Damaged {
                reason: "its header is damaged".to_owned(),
            });
        }
        return Ok(Found::Store { legacy: false });
    }
    if len > 0 && !header.starts_with(SQLITE_MAGIC) {
        return Err(not_a_store(path, "it is not a SQLite database"));
    }
    if len > 0 && !header_is_sound(&header) {
        return Err(not_a_store(
            path,
            "its SQLite header is damaged and does not show an event store",
        ));
    }
    if let Some(id) = logged_id.or(raw_id).filter(|&id| id != 0) {
        return Err(not_a_store(
            path,
            format!("it is the SQLite database of another application (application_id {id:#x})"),
        ));
    }
    // No application id: an empty database, a version 1 store, or another
    // application's that sets none. Its schema tells.
    let shm = sibling(path, "-shm").exists();
    match read_identity(path, wal_len > 0 && shm) {
        Ok(identity) => identity.judge(path),
        Err(e) => Err(not_a_store(
            path,
            format!("SQLite cannot read it ({e}) and its header does not show an event store"),
        )),
    }
}

/// The first 100 bytes of the newest committed copy of page 1 in the
/// write-ahead log at `wal` (`None` when the log holds none): what the
/// header will be once the log is checkpointed. Frames count from the log's
/// header while their salts match it (older frames are a previous
/// generation); a transaction counts once its commit frame is there.
fn newest_first_page(wal: &Path) -> Option<Vec<u8>> {
    use std::io::{Seek, SeekFrom};
    const HEADER: u64 = 32;
    const FRAME_HEADER: u64 = 24;
    let mut file = File::open(wal).ok()?;
    let mut header = [0u8; HEADER as usize];
    file.read_exact(&mut header).ok()?;
    let magic = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
    if magic & !1 != 0x377f_0682 {
        return None;
    }
    let page_size = u64::from(u32::from_be_bytes([
        header[8], header[9], header[10], header[11],
    ]));
    if !(512..=65_536).contains(&page_size) || !page_size.is_power_of_two() {
        return None;
    }
    let salts = &header[16..24];
    let len = file.metadata().ok()?.len();
    let (mut pending, mut committed) = (None, None);
    let mut at = HEADER;
    while at + FRAME_HEADER + page_size <= len {
        file.seek(SeekFrom::Start(at)).ok()?;
        let mut frame = [0u8; FRAME_HEADER as usize];
        file.read_exact(&mut frame).ok()?;
        if &frame[8..16] != salts {
            break;
        }
        let page = u32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
        if page == 1 {
            let mut first = vec![0u8; 100];
            file.read_exact(&mut first).ok()?;
            pending = Some(first);
        }
        let commit = u32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]) != 0;
        if commit && pending.is_some() {
            committed = pending.take();
        }
        at += FRAME_HEADER + page_size;
    }
    committed
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

/// Reads the identity through SQLite, creating nothing: with the log
/// (`with_log`, when the log and its index are both there already, as while
/// another process has the database open), else the database file alone,
/// opened immutable (no `-shm`, no `-wal`, no locks).
fn read_identity(path: &Path, with_log: bool) -> rusqlite::Result<Identity> {
    let conn = if with_log {
        Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?
    } else {
        Connection::open_with_flags(
            immutable_uri(path),
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )?
    };
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

/// `file:PATH?immutable=1`, the path percent-encoded.
fn immutable_uri(path: &Path) -> String {
    #[cfg(unix)]
    let bytes = std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str()).to_vec();
    #[cfg(not(unix))]
    let bytes = path.to_string_lossy().replace('\\', "/").into_bytes();
    let mut uri = String::from("file:");
    for b in bytes {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            uri.push(char::from(b));
        } else {
            uri.push_str(&format!("%{b:02X}"));
        }
    }
    uri.push_str("?immutable=1");
    uri
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::schema::create_schema;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn reason(result: Result<Found, StoreError>) -> String {
        match result {
            Err(StoreError::NotAStore { reason, .. }) => reason,
            other => panic!("expected NotAStore, got {other:?}"),
        }
    }

    /// A WAL-mode database of another application, cleanly closed (no log
    /// beside it).
    fn foreign_wal(path: &Path, application_id: i32) {
        let conn = Connection::open(path).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.execute_batch(&format!(
            "PRAGMA application_id = {application_id}; CREATE TABLE users (id INTEGER PRIMARY KEY); \
             INSERT INTO users DEFAULT VALUES;"
        ))
        .unwrap();
    }

    #[test]
    fn a_foreign_wal_database_is_refused_by_its_bytes_and_nothing_appears_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        for (name, id, says) in [
            ("marked.db", 1234, "application_id 0x4d2"),
            ("unmarked.db", 0, "tables: users"),
        ] {
            let path = dir.path().join(name);
            foreign_wal(&path, id);
            assert_eq!(std::fs::read(&path).unwrap()[18], 2, "WAL mode");
            let before = names(dir.path());
            let bytes = std::fs::read(&path).unwrap();
            let reason = reason(inspect(&path));
            assert!(reason.contains(says), "{name}: {reason}");
            assert_eq!(names(dir.path()), before, "{name}: no -shm, no -wal");
            assert_eq!(std::fs::read(&path).unwrap(), bytes);
        }
    }

    #[test]
    fn a_store_whose_first_page_is_still_in_the_log_is_ours() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.db");
        // An empty database in WAL mode, then the schema written to the
        // log only (no checkpoint while the connection lives).
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        conn.execute_batch("CREATE TABLE t (x); DROP TABLE t;")
            .unwrap();
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            .unwrap();
        create_schema(&conn).unwrap();
        let header = std::fs::read(&path).unwrap();
        assert_eq!(application_id(&header), Some(0), "not yet in the file");
        let logged = newest_first_page(&sibling(&path, "-wal")).unwrap();
        assert_eq!(application_id(&logged), Some(APPLICATION_ID));
        assert_eq!(inspect(&path).unwrap(), Found::Store { legacy: false });
        drop(conn);
        assert_eq!(inspect(&path).unwrap(), Found::Store { legacy: false });
    }

    #[test]
    fn missing_empty_and_text_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.db");
        assert_eq!(inspect(&path).unwrap(), Found::Missing);
        std::fs::write(&path, b"").unwrap();
        assert_eq!(inspect(&path).unwrap(), Found::Empty);
        std::fs::write(&path, b"SECRET=1\n").unwrap();
        assert_eq!(reason(inspect(&path)), "it is not a SQLite database");
        assert_eq!(
            reason(inspect(dir.path())),
            "it is not a regular file",
            "a folder"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_link_is_followed_only_to_an_existing_event_store() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("events.db");
        let target = dir.path().join("elsewhere.db");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let dangling = reason(inspect(&link));
        assert!(
            dangling.contains("symbolic link") && dangling.contains("does not exist"),
            "{dangling}"
        );
        assert!(dangling.contains("elsewhere.db"), "{dangling}");
        std::fs::write(&target, b"").unwrap();
        let empty = reason(inspect(&link));
        assert!(empty.contains("an empty file"), "{empty}");
        std::fs::remove_file(&target).unwrap();
        let conn = Connection::open(&target).unwrap();
        create_schema(&conn).unwrap();
        drop(conn);
        assert_eq!(inspect(&link).unwrap(), Found::Store { legacy: false });
    }

    #[test]
    fn the_immutable_uri_escapes_what_a_uri_would_read() {
        assert_eq!(
            immutable_uri(Path::new("/tmp/a b/x?y#z%.db")),
            "file:/tmp/a%20b/x%3Fy%23z%25.db?immutable=1"
        );
    }

    #[test]
    fn a_sound_header_is_one_sqlite_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        foreign_wal(&path, 0);
        let mut header = std::fs::read(&path).unwrap()[..100].to_vec();
        assert!(header_is_sound(&header));
        header[21] = 0;
        assert!(!header_is_sound(&header));
        assert!(!header_is_sound(&header[..50]));
    }
}
