//! The store's schema: its version, the ownership marks (`APPLICATION_ID`, `OWNER`), the tables of versions 1 and 2, the migration between them and the columns added within version 2.

use rusqlite::{Connection, TransactionBehavior};

/// The SQLite `application_id` of an event store (`"EVST"`): the proof,
/// checked before any write, that a file is an event store.
pub const APPLICATION_ID: i32 = 0x4556_5354;

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: i64 = 2;

/// The owner mark in the `events_store_meta` table.
pub(super) const OWNER: &str = "events-core event store";

pub(super) const STATE_PENDING: i64 = 0;
pub(super) const STATE_DEAD: i64 = 1;
pub(super) const STATE_HANDLED: i64 = 2;

/// The first 16 bytes of every SQLite database.
pub(super) const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// The schema of version 1 (before ownership marks), as SQLite keeps it:
/// a file with exactly this schema and user_version 1 was written by this
/// library.
pub(super) const V1_TABLE: &str = "CREATE TABLE events (
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
            claim_until INTEGER,
            local INTEGER NOT NULL DEFAULT 0,
            trace TEXT
        );
        CREATE INDEX IF NOT EXISTS events_by_state ON events (state, seq);
        CREATE TABLE IF NOT EXISTS unreadable (
            seq INTEGER PRIMARY KEY,
            id, name, occurred_on, attributes, stored_at, state, attempts, last_error, last_attempt_at,
            reason TEXT NOT NULL,
            found_at TEXT NOT NULL,
            trace
        );
        CREATE TABLE IF NOT EXISTS events_store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT OR IGNORE INTO events_store_meta (key, value) VALUES ('owner', '{OWNER}');
        PRAGMA application_id = {APPLICATION_ID};
        PRAGMA user_version = {SCHEMA_VERSION};"
    ))?;
    if !has_local_column(conn)? {
        // A store written before local-mode events were marked: its
        // pending events were all meant for a remote bus or are unknown.
        conn.execute_batch("ALTER TABLE events ADD COLUMN local INTEGER NOT NULL DEFAULT 0")?;
    }
    add_trace_column(conn)
}

/// Adds the nullable `trace` column (the JSON of the publish's trace
/// context, [`TraceContext::to_json`](crate::trace::TraceContext::to_json))
/// to a store written before events kept their context: its events read
/// back with none. Builds without the column still read and write such a
/// store (they name the columns they use). In the caller's transaction.
pub(super) fn add_trace_column(conn: &Connection) -> rusqlite::Result<()> {
    // `unreadable` keeps raw values: no type, so no conversion.
    for (table, ty) in [("events", " TEXT"), ("unreadable", "")] {
        if !has_column(conn, table, "trace")? {
            conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN trace{ty}"))?;
        }
    }
    Ok(())
}

/// Whether the `events` table has the `local` column (added within
/// version 2: a store written by an earlier build of it lacks it until a
/// writer opens it).
pub(super) fn has_local_column(conn: &Connection) -> rusqlite::Result<bool> {
    has_column(conn, "events", "local")
}

/// Whether the `events` table has the `trace` column (added within
/// version 2, like `local`).
pub(super) fn has_trace_column(conn: &Connection) -> rusqlite::Result<bool> {
    has_column(conn, "events", "trace")
}

fn has_column(conn: &Connection, table: &str, column: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT COUNT(*) FROM pragma_table_info(?1) WHERE name = ?2",
        [table, column],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
}

/// Version 1 → 2: states instead of a dead flag, claims, unreadable rows,
/// the ownership marks. One transaction.
pub(super) fn migrate_v1(conn: &mut Connection) -> rusqlite::Result<()> {
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

/// The columns the row readers take, in their order.
pub(super) const COLUMNS: &str =
    "seq, id, name, occurred_on, attributes, stored_at, state, attempts, last_error, last_attempt_at, trace";

/// [`COLUMNS`] for a store without the `trace` column (opened read-only
/// before a writer added it): no event has a context.
pub(super) const COLUMNS_WITHOUT_TRACE: &str =
    "seq, id, name, occurred_on, attributes, stored_at, state, attempts, last_error, last_attempt_at, NULL";

/// The columns a store with or without the `trace` column is read with.
pub(super) fn columns(trace_column: bool) -> &'static str {
    if trace_column {
        COLUMNS
    } else {
        COLUMNS_WITHOUT_TRACE
    }
}

pub(super) const COLUMN_NAMES: [&str; 11] = [
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
    "trace",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn table_sql(conn: &Connection, name: &str) -> String {
        conn.query_row(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [name],
            |r| r.get(0),
        )
        .unwrap()
    }

    #[test]
    fn the_schema_marks_the_file_and_creating_it_twice_changes_nothing() {
        let conn = Connection::open_in_memory().unwrap();
        create_schema(&conn).unwrap();
        let events = table_sql(&conn, "events");
        create_schema(&conn).unwrap();
        assert_eq!(table_sql(&conn, "events"), events);
        let id: i32 = conn
            .query_row("PRAGMA application_id", [], |r| r.get(0))
            .unwrap();
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!((id, version), (APPLICATION_ID, SCHEMA_VERSION));
        let owner: String = conn
            .query_row(
                "SELECT value FROM events_store_meta WHERE key = 'owner'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(owner, OWNER);
        assert!(has_local_column(&conn).unwrap());
        assert!(has_trace_column(&conn).unwrap());
        // The names the row readers use are the table's.
        let names: Vec<&str> = COLUMNS.split(", ").collect();
        assert_eq!(names, COLUMN_NAMES);
        assert_eq!(COLUMNS_WITHOUT_TRACE.split(", ").count(), names.len());
        conn.query_row(&format!("SELECT {COLUMNS} FROM events"), [], |_| Ok(()))
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(()),
                e => Err(e),
            })
            .unwrap();
        conn.query_row(
            &format!("SELECT {COLUMNS}, reason, found_at FROM unreadable"),
            [],
            |_| Ok(()),
        )
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(()),
            e => Err(e),
        })
        .unwrap();
    }

    #[test]
    fn a_store_without_the_trace_column_gains_it_keeping_its_rows() {
        let conn = Connection::open_in_memory().unwrap();
        create_schema(&conn).unwrap();
        conn.execute_batch(
            "INSERT INTO events (id, name, occurred_on, attributes, stored_at) VALUES ('a', 'n', 't', '{}', 't');
             ALTER TABLE events DROP COLUMN trace;
             ALTER TABLE unreadable DROP COLUMN trace;",
        )
        .unwrap();
        assert!(!has_trace_column(&conn).unwrap());
        create_schema(&conn).unwrap();
        assert!(has_trace_column(&conn).unwrap());
        assert!(has_column(&conn, "unreadable", "trace").unwrap());
        let (id, trace): (String, Option<String>) = conn
            .query_row("SELECT id, trace FROM events", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((id.as_str(), trace), ("a", None));
    }

    #[test]
    fn version_1_rows_move_to_states_keeping_their_numbers() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(&format!(
            "{V1_TABLE};
             INSERT INTO events (id, name, occurred_on, attributes, stored_at, dead)
                VALUES ('a', 'n', 't', '{{}}', 't', 0), ('b', 'n', 't', '{{}}', 't', 1);
             PRAGMA user_version = 1;"
        ))
        .unwrap();
        migrate_v1(&mut conn).unwrap();
        let rows: Vec<(i64, String, i64, i64)> = conn
            .prepare("SELECT seq, id, state, local FROM events ORDER BY seq")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(
            rows,
            [
                (1, "a".to_owned(), STATE_PENDING, 0),
                (2, "b".to_owned(), STATE_DEAD, 0)
            ]
        );
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let left: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'events_v1'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(left, 0);
    }
}
