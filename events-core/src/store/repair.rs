//! Repair of a damaged store: a salvaged copy is built beside the original, then swapped in.
//!
//! Only under a roll-forward marker is the copy swapped in. At
//! every instant the store's path holds the original or the complete copy,
//! and the original is kept as `events.db.damaged-<time>`.
//!
//! Runs only while this process holds the store exclusively (no other
//! process has it open: see `presence::Presence`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use rusqlite::types::Value;
use rusqlite::{params_from_iter, Connection, OpenFlags};

use super::error::StoreError;
use super::files::{open_private, sibling};
use super::report::OpenReport;
use super::schema::{create_schema, SQLITE_MAGIC};

fn damaged(path: &Path, reason: impl Into<String>, action: impl Into<String>) -> StoreError {
    StoreError::Damaged {
        path: path.to_owned(),
        reason: reason.into(),
        action: action.into(),
    }
}

fn io(path: &Path, what: &str, e: impl std::fmt::Display) -> StoreError {
    damaged(
        path,
        format!("{what}: {e}"),
        "the repair stopped and the original file was left in place",
    )
}

fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    } else if let Ok(d) = std::fs::File::open(".") {
        let _ = d.sync_all();
    }
}

/// Finishes a repair a crash interrupted (its marker is there): the
/// salvaged copy was complete when the marker was written.
pub(super) fn finish_interrupted(path: &Path, report: &mut OpenReport) -> Result<(), StoreError> {
    let marker = sibling(path, ".repair");
    let Ok(text) = std::fs::read_to_string(&marker) else {
        return Ok(());
    };
    tracing::warn!(path = %path.display(), "finishing a repair that was interrupted");
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("damaged=") {
            report.damaged_file = Some(PathBuf::from(v));
        } else if let Some(v) = line.strip_prefix("recovered=") {
            report.rows_recovered = v.parse().unwrap_or(0);
        } else if let Some(v) = line.strip_prefix("lost=") {
            report.rows_lost = v.parse().unwrap_or(0);
        } else if let Some(v) = line.strip_prefix("lower_bound=") {
            report.rows_lost_is_lower_bound = v == "1";
        }
    }
    roll_forward(path)
}

fn roll_forward(path: &Path) -> Result<(), StoreError> {
    let salvage = sibling(path, ".salvage");
    if salvage.exists() {
        for suffix in ["-wal", "-shm"] {
            match std::fs::remove_file(sibling(path, suffix)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(path, "cannot remove the damaged log", e)),
            }
        }
        std::fs::rename(&salvage, path).map_err(|e| io(path, "cannot swap the copy in", e))?;
        sync_dir(path);
    }
    let _ = std::fs::remove_file(sibling(path, ".repair"));
    sync_dir(path);
    Ok(())
}

/// Repairs the store at `path` (damaged for `reason`): see the module docs.
/// `hwm` is the highest sequence number known acknowledged, so the copy
/// never reuses one.
pub(super) fn repair(
    path: &Path,
    reason: &str,
    hwm: Option<i64>,
    report: &mut OpenReport,
) -> Result<(), StoreError> {
    tracing::error!(path = %path.display(), %reason, "event store damaged; building a salvaged copy");
    let salvage = sibling(path, ".salvage");
    let _ = std::fs::remove_file(&salvage);
    let _ = std::fs::remove_file(sibling(&salvage, "-journal"));
    let reading = readable_copy(path).map_err(|e| {
        // Leave no partial copy behind (a full disk).
        for suffix in ["", "-wal"] {
            let _ = std::fs::remove_file(sibling(&sibling(path, ".reading"), suffix));
        }
        io(path, "cannot copy the damaged file", e)
    })?;
    let copied = build_copy(&reading, &salvage, hwm);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(sibling(&reading, suffix));
    }
    let figures = match copied {
        Ok(figures) => figures,
        Err(e) => {
            let _ = std::fs::remove_file(&salvage);
            return Err(damaged(
                path,
                format!("{reason}; salvaging failed: {e}"),
                "it was left in place, untouched",
            ));
        }
    };
    let size = std::fs::metadata(path).map_or(0, |m| m.len())
        + std::fs::metadata(sibling(path, "-wal")).map_or(0, |m| m.len());
    if figures.recovered == 0 && (figures.lost > 0 || size > 64 * 1024) {
        let _ = std::fs::remove_file(&salvage);
        return Err(damaged(
            path,
            format!("{reason}; no row could be read from it"),
            "it was left in place, untouched; inspect it or move it aside to start a new store",
        ));
    }
    // Keep the original under a new name (links: nothing is copied).
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ");
    let kept = sibling(path, &format!(".damaged-{stamp}"));
    for suffix in ["", "-wal"] {
        let from = sibling(path, suffix);
        if from.exists() {
            let to = sibling(&kept, suffix);
            std::fs::hard_link(&from, &to)
                .or_else(|_| std::fs::copy(&from, &to).map(|_| ()))
                .map_err(|e| io(path, "cannot keep the damaged file", e))?;
        }
    }
    sync_dir(path);
    let marker = sibling(path, ".repair");
    let text = format!(
        "damaged={}\nrecovered={}\nlost={}\nlower_bound={}\n",
        kept.display(),
        figures.recovered,
        figures.lost,
        u8::from(figures.lower_bound)
    );
    let written = open_private(&marker).and_then(|mut f| {
        use std::io::Write;
        f.set_len(0)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()
    });
    written.map_err(|e| io(path, "cannot write the repair marker", e))?;
    sync_dir(path);
    roll_forward(path)?;
    report.damaged_file = Some(kept);
    report.rows_recovered = figures.recovered;
    report.rows_lost = figures.lost;
    report.rows_lost_is_lower_bound = figures.lower_bound;
    tracing::error!(
        path = %path.display(),
        damaged = ?report.damaged_file,
        recovered = figures.recovered,
        lost = figures.lost,
        lower_bound = figures.lower_bound,
        "event store repaired"
    );
    Ok(())
}

/// A working copy of the damaged file that SQLite will open: whole pages
/// only, the header's fixed fields restored to what this library writes,
/// and the page count cleared so SQLite counts the pages the file has.
fn readable_copy(path: &Path) -> std::io::Result<PathBuf> {
    let mut bytes = std::fs::read(path)?;
    let copy = sibling(path, ".reading");
    if bytes.len() >= 100 {
        bytes[..16].copy_from_slice(SQLITE_MAGIC);
        let page_size = match u16::from_be_bytes([bytes[16], bytes[17]]) {
            1 => 65_536,
            n => usize::from(n),
        };
        let page_size = if page_size.is_power_of_two() && page_size >= 512 {
            page_size
        } else {
            bytes[16..18].copy_from_slice(&4096u16.to_be_bytes());
            4096
        };
        bytes.truncate(bytes.len() / page_size * page_size);
        if bytes.len() >= 100 {
            for (at, ok) in [(18usize, [1u8, 2]), (19, [1, 2])] {
                if !ok.contains(&bytes[at]) {
                    bytes[at] = 2;
                }
            }
            bytes[20] = 0;
            bytes[21] = 64;
            bytes[22] = 32;
            bytes[23] = 32;
            bytes[28..32].copy_from_slice(&[0; 4]);
            let schema_format = u32::from_be_bytes([bytes[44], bytes[45], bytes[46], bytes[47]]);
            if !(1..=4).contains(&schema_format) {
                bytes[44..48].copy_from_slice(&4u32.to_be_bytes());
            }
            let encoding = u32::from_be_bytes([bytes[56], bytes[57], bytes[58], bytes[59]]);
            if !(1..=3).contains(&encoding) {
                bytes[56..60].copy_from_slice(&1u32.to_be_bytes());
            }
        }
    }
    {
        use std::io::Write;
        let mut f = open_private(&copy)?;
        f.set_len(0)?;
        f.write_all(&bytes)?;
    }
    let wal = sibling(path, "-wal");
    if wal.exists() {
        let to = sibling(&copy, "-wal");
        let data = std::fs::read(&wal)?;
        use std::io::Write;
        let mut f = open_private(&to)?;
        f.set_len(0)?;
        f.write_all(&data)?;
    }
    Ok(copy)
}

/// What a salvage found.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Figures {
    pub recovered: u64,
    pub lost: u64,
    pub lower_bound: bool,
}

const COLUMNS_V2: &str =
    "seq, id, name, occurred_on, attributes, stored_at, state, attempts, last_error, last_attempt_at";
const COLUMNS_V1: &str = "seq, id, name, occurred_on, attributes, stored_at, CASE WHEN dead THEN 1 ELSE 0 END, attempts, last_error, last_attempt_at";

fn build_copy(
    from: &Path,
    to: &Path,
    hwm: Option<i64>,
) -> Result<Figures, Box<dyn std::error::Error + Send + Sync>> {
    drop(open_private(to)?);
    let open_source = || {
        Connection::open_with_flags(
            from,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
    };
    // Schema entries pointing past the end of a cut file make SQLite refuse
    // every query: drop them from the working copy (ours to change).
    {
        let source = open_source()?;
        source.pragma_update(None, "writable_schema", "ON")?;
        let page_size: i64 = source.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        let pages =
            i64::try_from(std::fs::metadata(from)?.len()).unwrap_or(i64::MAX) / page_size.max(1);
        let _ = source.execute("DELETE FROM sqlite_master WHERE rootpage > ?1", [pages]);
        source.pragma_update(None, "writable_schema", "OFF")?;
    }
    let source = open_source()?;
    let mut dest = Connection::open(to)?;
    dest.pragma_update(None, "journal_mode", "DELETE")?;
    dest.pragma_update(None, "synchronous", "FULL")?;
    create_schema(&dest)?;
    let legacy = source.prepare("SELECT state FROM events LIMIT 0").is_err();
    let has = |column: &str| {
        !legacy
            && source
                .prepare(&format!("SELECT {column} FROM events LIMIT 0"))
                .is_ok()
    };
    let columns = format!(
        "{}, {}, {}",
        if legacy { COLUMNS_V1 } else { COLUMNS_V2 },
        if has("local") { "local" } else { "0" },
        if has("trace") { "trace" } else { "NULL" },
    );
    let figures = {
        let tx = dest.transaction()?;
        let figures = copy_rows(&source, &tx, &columns, legacy)?;
        let highest: Option<i64> = source
            .query_row(
                "SELECT seq FROM sqlite_sequence WHERE name = 'events'",
                [],
                |r| r.get(0),
            )
            .ok();
        let floor = highest.into_iter().chain(hwm).max().unwrap_or(0);
        tx.execute(
            "UPDATE sqlite_sequence SET seq = MAX(seq, ?1) WHERE name = 'events'",
            [floor],
        )?;
        tx.execute(
            "INSERT INTO sqlite_sequence (name, seq) SELECT 'events', ?1 WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'events')",
            [floor],
        )?;
        if !legacy {
            // Unreadable rows found before the damage stay dead letters.
            if let Ok(mut read) = source.prepare("SELECT * FROM unreadable") {
                // By name: a source written before a column was added
                // has fewer, in another order.
                let n = read.column_count();
                let names: Vec<String> = read
                    .column_names()
                    .into_iter()
                    .map(|c| format!("\"{}\"", c.replace('"', "\"\"")))
                    .collect();
                let placeholders = vec!["?"; n].join(", ");
                let mut write = tx.prepare(&format!(
                    "INSERT OR IGNORE INTO unreadable ({}) VALUES ({placeholders})",
                    names.join(", ")
                ))?;
                if let Ok(mut rows) = read.query([]) {
                    while let Ok(Some(row)) = rows.next() {
                        let values: Vec<Value> =
                            (0..n).filter_map(|i| row.get::<_, Value>(i).ok()).collect();
                        if values.len() == n {
                            let _ = write.execute(params_from_iter(values));
                        }
                    }
                }
            }
        }
        tx.commit()?;
        figures
    };
    drop(dest);
    std::fs::File::open(to)?.sync_all()?;
    Ok(figures)
}

/// Copies every readable row, walking the rows present (never the range
/// of sequence numbers): a damaged region is skipped by galloping over it.
/// Rows known to exist (from the table or its indexes) and not copied are
/// the lost ones; the count is a lower bound when a damaged region hid rows
/// that no index lists.
fn copy_rows(
    source: &Connection,
    dest: &rusqlite::Transaction<'_>,
    columns: &str,
    legacy: bool,
) -> Result<Figures, Box<dyn std::error::Error + Send + Sync>> {
    let mut write = dest.prepare(&format!(
        "INSERT OR IGNORE INTO events ({COLUMNS_V2}, local, trace) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
    ))?;
    let mut batch = source.prepare(&format!(
        "SELECT {columns} FROM events WHERE seq > ?1 ORDER BY seq LIMIT 256"
    ))?;
    let mut next_seq =
        source.prepare("SELECT seq FROM events WHERE seq > ?1 ORDER BY seq LIMIT 1")?;
    let mut one = source.prepare(&format!("SELECT {columns} FROM events WHERE seq = ?1"))?;
    let mut recovered: BTreeSet<i64> = BTreeSet::new();
    let mut unreadable: BTreeSet<i64> = BTreeSet::new();
    let mut skipped_regions = 0u64;
    let mut last = i64::MIN;
    let read_values = |row: &rusqlite::Row<'_>| -> rusqlite::Result<Vec<Value>> {
        (0..12).map(|i| row.get::<_, Value>(i)).collect()
    };
    'scan: loop {
        let mut progressed = false;
        let outcome = (|| -> rusqlite::Result<bool> {
            let mut rows = batch.query([last])?;
            let mut any = false;
            while let Some(row) = rows.next()? {
                let values = read_values(row)?;
                let Value::Integer(seq) = values[0] else {
                    continue;
                };
                if seq <= last {
                    // Out of order: a damaged page of the table.
                    return Err(rusqlite::Error::QueryReturnedNoRows);
                }
                write.execute(params_from_iter(values))?;
                recovered.insert(seq);
                last = seq;
                any = true;
                progressed = true;
            }
            Ok(any)
        })();
        match outcome {
            Ok(true) => continue,
            Ok(false) => break,
            Err(_) if progressed => continue,
            Err(_) => {}
        }
        // Something at or after `last` cannot be read. Its seq alone?
        match next_seq.query_row([last], |r| r.get::<_, i64>(0)) {
            // A damaged page can answer with a row before `last`: that is
            // no progress, and the region is galloped over below.
            Ok(seq) if seq > last => {
                match one.query_row([seq], |r| read_values(r)) {
                    Ok(values) => {
                        write.execute(params_from_iter(values))?;
                        recovered.insert(seq);
                    }
                    Err(_) => {
                        unreadable.insert(seq);
                    }
                }
                last = seq;
                continue;
            }
            Err(rusqlite::Error::QueryReturnedNoRows) => break,
            Ok(_) | Err(_) => {}
        }
        // The table's own pages are damaged here: gallop over the region.
        skipped_regions += 1;
        let mut step: i64 = 1;
        loop {
            let Some(probe) = last.checked_add(step) else {
                break 'scan;
            };
            match next_seq.query_row([probe], |r| r.get::<_, i64>(0)) {
                Ok(_) => {
                    last = probe;
                    continue 'scan;
                }
                Err(rusqlite::Error::QueryReturnedNoRows) => break 'scan,
                Err(_) => {}
            }
            // Past the largest step (the table's root itself is damaged):
            // nothing further can be found.
            let Some(next) = step.checked_mul(2) else {
                break 'scan;
            };
            step = next;
        }
    }
    // Rows the indexes know of.
    let mut listed_everything = false;
    let index_queries: &[&str] = if legacy {
        &[
            "SELECT seq FROM events INDEXED BY events_by_state WHERE dead IN (0, 1)",
            "SELECT seq FROM events INDEXED BY sqlite_autoindex_events_1 WHERE id >= ''",
        ]
    } else {
        &[
            "SELECT seq FROM events INDEXED BY events_by_state WHERE state IN (0, 1, 2)",
            "SELECT seq FROM events INDEXED BY sqlite_autoindex_events_1 WHERE id >= ''",
        ]
    };
    let mut known: BTreeSet<i64> = recovered.union(&unreadable).copied().collect();
    for sql in index_queries {
        let scanned = (|| -> rusqlite::Result<()> {
            let mut stmt = source.prepare(sql)?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                known.insert(row.get(0)?);
            }
            Ok(())
        })();
        listed_everything |= scanned.is_ok();
    }
    let lost = known.difference(&recovered).count() as u64;
    Ok(Figures {
        recovered: recovered.len() as u64,
        lost,
        lower_bound: skipped_regions > 0 && !listed_everything,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store of `n` rows in DELETE journal mode (one file), closed.
    fn store_file(path: &Path, n: i64) {
        let conn = Connection::open(path).unwrap();
        create_schema(&conn).unwrap();
        for i in 1..=n {
            conn.execute(
                "INSERT INTO events (id, name, occurred_on, attributes, stored_at) VALUES (?1, 'n', 't', ?2, 't')",
                rusqlite::params![format!("e{i}"), "x".repeat(300)],
            )
            .unwrap();
        }
    }

    fn count(path: &Path) -> i64 {
        Connection::open(path)
            .unwrap()
            .query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn a_damaged_header_is_restored_in_the_working_copy_and_every_row_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.db");
        store_file(&path, 50);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[..16].copy_from_slice(b"garbage garbage!");
        bytes[21] = 0;
        std::fs::write(&path, &bytes).unwrap();
        let mut report = OpenReport::default();
        repair(&path, "its header is damaged", Some(50), &mut report).unwrap();
        assert_eq!(report.rows_recovered, 50);
        assert_eq!(report.rows_lost, 0);
        let kept = report.damaged_file.clone().unwrap();
        assert_eq!(std::fs::read(&kept).unwrap(), bytes, "the original kept");
        assert_eq!(count(&path), 50);
        for work in [".reading", ".salvage", ".repair"] {
            assert!(!sibling(&path, work).exists(), "{work} left");
        }
    }

    #[test]
    fn a_salvage_keeps_trace_contexts_and_reads_a_store_without_the_column() {
        let trace = r#"{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}"#;
        let damage = |path: &Path| {
            let mut bytes = std::fs::read(path).unwrap();
            bytes[..16].copy_from_slice(b"garbage garbage!");
            std::fs::write(path, &bytes).unwrap();
        };
        let traces = |path: &Path| -> Vec<Option<String>> {
            let conn = Connection::open(path).unwrap();
            let mut stmt = conn
                .prepare("SELECT trace FROM events ORDER BY seq")
                .unwrap();
            let rows = stmt.query_map([], |r| r.get(0)).unwrap();
            rows.collect::<rusqlite::Result<_>>().unwrap()
        };
        let dir = tempfile::tempdir().unwrap();

        let with = dir.path().join("with.db");
        store_file(&with, 3);
        Connection::open(&with)
            .unwrap()
            .execute("UPDATE events SET trace = ?1 WHERE id = 'e2'", [trace])
            .unwrap();
        damage(&with);
        let mut report = OpenReport::default();
        repair(&with, "its header is damaged", Some(3), &mut report).unwrap();
        assert_eq!(report.rows_recovered, 3);
        assert_eq!(traces(&with), [None, Some(trace.to_owned()), None]);

        // Written before the column existed, with an unreadable row moved
        // aside: everything is copied, by name.
        let without = dir.path().join("without.db");
        store_file(&without, 2);
        {
            let conn = Connection::open(&without).unwrap();
            conn.execute_batch(
                "ALTER TABLE events DROP COLUMN trace;
                 ALTER TABLE unreadable DROP COLUMN trace;
                 INSERT INTO unreadable (seq, id, reason, found_at) VALUES (9, 'bad', 'why', 't');",
            )
            .unwrap();
        }
        damage(&without);
        let mut report = OpenReport::default();
        repair(&without, "its header is damaged", Some(9), &mut report).unwrap();
        assert_eq!(report.rows_recovered, 2);
        assert_eq!(traces(&without), [None, None]);
        let kept: (String, String) = Connection::open(&without)
            .unwrap()
            .query_row("SELECT id, reason FROM unreadable WHERE seq = 9", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!(kept, ("bad".to_owned(), "why".to_owned()));
    }

    #[test]
    fn an_interrupted_repair_is_rolled_forward_from_its_marker() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.db");
        store_file(&path, 1);
        let salvage = sibling(&path, ".salvage");
        store_file(&salvage, 3);
        std::fs::write(
            sibling(&path, ".repair"),
            "damaged=/kept\nrecovered=3\nlost=2\nlower_bound=1\n",
        )
        .unwrap();
        let mut report = OpenReport::default();
        finish_interrupted(&path, &mut report).unwrap();
        assert_eq!(count(&path), 3, "the copy is in place");
        assert!(!salvage.exists() && !sibling(&path, ".repair").exists());
        assert_eq!(report.damaged_file, Some(PathBuf::from("/kept")));
        assert_eq!((report.rows_recovered, report.rows_lost), (3, 2));
        assert!(report.rows_lost_is_lower_bound);
        // Without a marker there is nothing to finish.
        let mut report = OpenReport::default();
        finish_interrupted(&path, &mut report).unwrap();
        assert_eq!(report, OpenReport::default());
    }

    #[test]
    fn a_file_no_row_can_be_read_from_is_left_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.db");
        store_file(&path, 400);
        let mut bytes = std::fs::read(&path).unwrap();
        let len = bytes.len();
        for b in &mut bytes[4096..len] {
            *b = 0xA5;
        }
        std::fs::write(&path, &bytes).unwrap();
        let mut report = OpenReport::default();
        let err = repair(&path, "damaged", None, &mut report).unwrap_err();
        assert!(matches!(err, StoreError::Damaged { .. }), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "untouched");
        assert!(report.damaged_file.is_none());
        for work in [".reading", ".salvage", ".repair"] {
            assert!(!sibling(&path, work).exists(), "{work} left");
        }
    }
}
