//! Reading rows back: decoding each column, and moving a row that cannot be read out of the queue.

use rusqlite::types::{Value, ValueRef};
use rusqlite::{params, params_from_iter, Connection};

use super::writer::Ctx;
use crate::envelope::{now, EventId, RawEvent};
use crate::store::error::StoreError;
use crate::store::event::{EventState, StoredEvent};
use crate::store::schema::{COLUMNS, STATE_DEAD, STATE_HANDLED, STATE_PENDING};
use crate::store::time::{parse_store_time, store_time};

fn text(value: ValueRef<'_>, column: &str) -> Result<Option<String>, String> {
    match value {
        ValueRef::Null => Ok(None),
        ValueRef::Text(bytes) => std::str::from_utf8(bytes)
            .map(|s| Some(s.to_owned()))
            .map_err(|_| format!("column `{column}` is not valid UTF-8")),
        ValueRef::Integer(_) => Err(format!("column `{column}` holds an integer, not text")),
        ValueRef::Real(_) => Err(format!("column `{column}` holds a number, not text")),
        ValueRef::Blob(_) => Err(format!("column `{column}` holds bytes, not text")),
    }
}

fn required(value: ValueRef<'_>, column: &str) -> Result<String, String> {
    text(value, column)?.ok_or_else(|| format!("column `{column}` is NULL"))
}

fn time(value: ValueRef<'_>, column: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    parse_store_time(&required(value, column)?).map_err(|e| format!("column `{column}`: {e}"))
}

/// A row, or why it cannot be read (`(seq, reason)`); `Err` only for
/// SQLite's own failures.
pub(super) fn decode_row(
    row: &rusqlite::Row<'_>,
) -> rusqlite::Result<Result<StoredEvent, (i64, String)>> {
    let seq: i64 = row.get(0)?;
    let get = |i: usize| row.get_ref(i);
    let values: Vec<ValueRef<'_>> = (1..10).map(get).collect::<rusqlite::Result<_>>()?;
    let decoded = (|| -> Result<StoredEvent, String> {
        let state = match values[5] {
            ValueRef::Integer(STATE_PENDING) => EventState::Pending,
            ValueRef::Integer(STATE_DEAD) => EventState::Dead,
            ValueRef::Integer(STATE_HANDLED) => EventState::Handled,
            _ => return Err("column `state` holds no known state".to_owned()),
        };
        let attempts = match values[6] {
            ValueRef::Integer(n) => u32::try_from(n.max(0)).unwrap_or(u32::MAX),
            _ => return Err("column `attempts` is not a number".to_owned()),
        };
        Ok(StoredEvent {
            event: RawEvent {
                id: EventId::from(required(values[0], "id")?),
                name: required(values[1], "name")?,
                occurred_on: time(values[2], "occurred_on")?,
                attributes: required(values[3], "attributes")?,
            },
            seq,
            stored_at: time(values[4], "stored_at")?,
            attempts,
            last_error: text(values[7], "last_error")?,
            last_attempt_at: match values[8] {
                ValueRef::Null => None,
                v => Some(time(v, "last_attempt_at")?),
            },
            state,
        })
    })();
    Ok(decoded.map_err(|reason| (seq, reason)))
}

type Rows = (Vec<StoredEvent>, Vec<(i64, String)>);

fn read(conn: &Connection, filter: &str, args: &[Value]) -> Result<Rows, StoreError> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM events {filter}"))?;
    let mut rows = stmt.query(params_from_iter(args.iter()))?;
    let (mut good, mut bad) = (Vec::new(), Vec::new());
    while let Some(row) = rows.next()? {
        match decode_row(row)? {
            Ok(event) => good.push(event),
            Err(unreadable) => bad.push(unreadable),
        }
    }
    Ok((good, bad))
}

/// Moves unreadable rows out of the queue, raw bytes kept, so they block
/// nothing.
fn quarantine(conn: &Connection, bad: &[(i64, String)]) -> rusqlite::Result<()> {
    let found_at = store_time(now());
    for (seq, reason) in bad {
        tracing::error!(seq, %reason, "unreadable row in the event store; moved to the dead letters");
        conn.execute(
            &format!(
                "INSERT OR REPLACE INTO unreadable ({COLUMNS}, reason, found_at)
                 SELECT {COLUMNS}, ?2, ?3 FROM events WHERE seq = ?1"
            ),
            params![seq, reason, found_at],
        )?;
        conn.execute("DELETE FROM events WHERE seq = ?1", [seq])?;
    }
    Ok(())
}

/// Reads, moving unreadable rows aside and reading again until every row
/// returned is sound. Read-only, it skips them (and says so in the log).
pub(super) fn select(
    ctx: &mut Ctx,
    filter: &str,
    args: &[Value],
) -> Result<Vec<StoredEvent>, StoreError> {
    loop {
        let (good, bad) = read(&ctx.conn, filter, args)?;
        if bad.is_empty() {
            return Ok(good);
        }
        if ctx.read_only {
            for (seq, reason) in &bad {
                tracing::warn!(seq, %reason, "unreadable row in the event store (read-only: skipped)");
            }
            return Ok(good);
        }
        let tx = ctx.immediate()?;
        quarantine(&tx, &bad)?;
        tx.commit()?;
    }
}

/// As [`select`], inside the caller's transaction.
pub(super) fn select_in(
    tx: &Connection,
    filter: &str,
    args: &[Value],
) -> Result<Vec<StoredEvent>, StoreError> {
    loop {
        let (good, bad) = read(tx, filter, args)?;
        if bad.is_empty() {
            return Ok(good);
        }
        quarantine(tx, &bad)?;
    }
}
