//! The files around a store: who owns the database file (checked before any
//! write), the locks that tell whether another process has the store open,
//! the state file (clean close, high-water mark), and owner-only modes.
//!
//! Beside `events.db` the store keeps `events.db-lock` (held exclusively for
//! a moment while a process opens or closes the store) and `events.db-state`
//! (held shared by every process that has the store open; it records whether
//! the last close was clean and the highest sequence number acknowledged).

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use super::{StoreError, APPLICATION_ID};

/// The first 16 bytes of every SQLite database.
pub(super) const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// The schema of version 1 (before ownership marks), as SQLite keeps it:
/// a file with exactly this schema and user_version 1 was written by this
/// library.
const V1_TABLE: &str = "CREATE TABLE events (
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
    )";

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

/// `path` with `suffix` appended to its file name.
pub(super) fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
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
            .is_ok_and(|v| v == super::sqlite::OWNER);
    Ok(Identity {
        application_id,
        user_version,
        marker,
        tables,
    })
}

pub(super) fn open_error(
    path: &Path,
    source: impl std::error::Error + Send + Sync + 'static,
) -> StoreError {
    StoreError::Open {
        path: path.to_owned(),
        source: Box::new(source),
    }
}

// ------------------------------------------------------------------ modes

/// Creates the folders up to `dir`, the ones created readable by the owner
/// only (0700).
pub(super) fn create_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Opens `path` for reading and writing, creating it readable and writable
/// by the owner only (0600).
pub(super) fn open_private(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// Makes an existing file owner-only (an empty file becoming a store).
pub(super) fn make_private(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

// ------------------------------------------------------------------ locks

#[cfg(unix)]
fn flock(file: &File, op: rustix::fs::FlockOperation) -> std::io::Result<()> {
    rustix::fs::flock(file, op).map_err(std::io::Error::from)
}

#[cfg(not(unix))]
fn flock(_file: &File, _op: ()) -> std::io::Result<()> {
    Ok(())
}

#[cfg(unix)]
use rustix::fs::FlockOperation as Op;

/// What the state file says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct State {
    /// The highest sequence number ever acknowledged (`None`: no state file
    /// yet).
    pub hwm: Option<i64>,
    /// Whether the last process to close the store closed it cleanly.
    pub clean: bool,
}

const STATE_LEN: usize = 64;

/// The locks and state file of an open store.
#[derive(Debug)]
pub(super) struct Presence {
    gate: Option<File>,
    state: Option<File>,
    lock_path: PathBuf,
    /// No other process had the store open when this one opened it.
    pub alone: bool,
    /// What the state file said at open.
    pub found: State,
}

impl Presence {
    /// Takes the gate, then this process's place among the store's users.
    /// `alone` tells whether any other process has it open. Without a
    /// writable folder (a read-only inspection), works without locks.
    pub fn enter(path: &Path, read_only: bool) -> Result<Presence, StoreError> {
        let lock_path = sibling(path, "-lock");
        let state_path = sibling(path, "-state");
        let open = |p: &Path| -> std::io::Result<File> {
            if read_only {
                // Never created here: a store no writer opened has none.
                OpenOptions::new().read(true).open(p)
            } else {
                open_private(p)
            }
        };
        let (gate, state) = match (open(&lock_path), open(&state_path)) {
            (Ok(g), Ok(s)) => (g, s),
            (Err(e), _) | (_, Err(e)) if read_only => {
                tracing::debug!(path = %path.display(), error = %e, "no lock files; inspecting without locks");
                return Ok(Presence {
                    gate: None,
                    state: None,
                    lock_path,
                    alone: false,
                    found: State::default(),
                });
            }
            (Err(e), _) | (_, Err(e)) => return Err(open_error(path, e)),
        };
        #[cfg(unix)]
        {
            flock(&gate, Op::LockExclusive).map_err(|e| open_error(path, e))?;
        }
        #[cfg(unix)]
        let alone = match flock(&state, Op::NonBlockingLockExclusive) {
            Ok(()) => true,
            Err(_) => {
                flock(&state, Op::LockShared).map_err(|e| open_error(path, e))?;
                false
            }
        };
        #[cfg(not(unix))]
        let alone = true;
        let found = read_state(&state);
        Ok(Presence {
            gate: Some(gate),
            state: Some(state),
            lock_path,
            alone,
            found,
        })
    }

    /// Whether this process holds the gate and no other process has the
    /// store open: the only time repair may run.
    pub fn exclusive(&self) -> bool {
        self.alone && self.gate.is_some()
    }

    /// Ends the opening: keeps a shared place, lets others in.
    pub fn opened(&mut self) {
        #[cfg(unix)]
        if let Some(state) = &self.state {
            if self.alone {
                // A conversion under the gate: nobody can slip in between.
                let _ = flock(state, Op::LockShared);
            }
        }
        if let Some(gate) = self.gate.take() {
            #[cfg(unix)]
            let _ = flock(&gate, Op::Unlock);
            drop(gate);
        }
    }

    /// A handle on the state file for the writer to record the high-water
    /// mark (`None` without one).
    pub fn state_writer(&self) -> Option<StateWriter> {
        self.state
            .as_ref()
            .and_then(|f| f.try_clone().ok())
            .map(StateWriter)
    }

    /// Leaves: the last process to close a store it closed cleanly marks
    /// the close clean.
    pub fn leave(mut self, clean: bool) {
        let Some(state) = self.state.take() else {
            return;
        };
        // Still opening (an open that failed): the gate is already held.
        let gate = self.gate.take().or_else(|| {
            let gate = open_private(&self.lock_path).ok()?;
            #[cfg(unix)]
            let _ = flock(&gate, Op::LockExclusive);
            Some(gate)
        });
        #[cfg(unix)]
        let last = flock(&state, Op::NonBlockingLockExclusive).is_ok();
        #[cfg(not(unix))]
        let last = true;
        if last && clean {
            let hwm = read_state(&state).hwm;
            write_state(&state, hwm, true);
        }
        drop(state);
        drop(gate);
    }
}

/// Writes the high-water mark after each commit.
#[derive(Debug)]
pub(super) struct StateWriter(File);

impl StateWriter {
    /// Records `hwm`, with the store marked open (not cleanly closed).
    pub fn record(&self, hwm: i64) {
        write_state(&self.0, Some(hwm), false);
    }
}

fn read_state(file: &File) -> State {
    let mut buf = [0u8; STATE_LEN];
    #[cfg(unix)]
    let read = std::os::unix::fs::FileExt::read_at(file, &mut buf, 0).unwrap_or(0);
    #[cfg(not(unix))]
    let read = {
        let _ = file;
        0
    };
    let text = String::from_utf8_lossy(&buf[..read]);
    let mut state = State::default();
    for word in text.split_whitespace() {
        if let Some(v) = word.strip_prefix("hwm=") {
            state.hwm = v.parse().ok();
        } else if let Some(v) = word.strip_prefix("clean=") {
            state.clean = v == "1";
        }
    }
    state
}

fn write_state(file: &File, hwm: Option<i64>, clean: bool) {
    let text = format!(
        "events-store-state hwm={} clean={}",
        hwm.unwrap_or(0),
        u8::from(clean)
    );
    let mut buf = [b' '; STATE_LEN];
    let n = text.len().min(STATE_LEN - 1);
    buf[..n].copy_from_slice(&text.as_bytes()[..n]);
    buf[STATE_LEN - 1] = b'\n';
    #[cfg(unix)]
    let _ = std::os::unix::fs::FileExt::write_all_at(file, &buf, 0);
    #[cfg(not(unix))]
    let _ = (file, buf);
}

/// Marks the state of a store being opened: open (not clean), `hwm` kept.
pub(super) fn mark_open(presence: &Presence, hwm: Option<i64>) {
    if let Some(state) = &presence.state {
        write_state(state, hwm, false);
    }
}
