//! The store's schema: its version, the ownership marks (`APPLICATION_ID`, `OWNER`), the tables of versions 1 and 2 and the migration between them.

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

pub(super) const COLUMNS: &str =
    "seq, id, name, occurred_on, attributes, stored_at, state, attempts, last_error, last_attempt_at";

pub(super) const COLUMN_NAMES: [&str; 10] = [
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
