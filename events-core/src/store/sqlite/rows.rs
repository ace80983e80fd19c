//! Reading rows back: decoding each column, and moving a row that cannot be read out of the queue.

use rusqlite::types::{Value, ValueRef};
use rusqlite::{params, params_from_iter, Connection};

use super::writer::Ctx;
use crate::envelope::{now, EventId, RawEvent};
use crate::store::error::StoreError;
use crate::store::event::{EventState, StoredEvent};
use crate::store::schema::{columns, COLUMNS, STATE_DEAD, STATE_HANDLED, STATE_PENDING};
use crate::store::time::{parse_store_time, store_time};
use crate::trace::TraceContext;

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

/// The `trace` column: a context, or none. A context that cannot be read
/// never makes the event unreadable: it is sent without one (logged at
/// debug), as readers of `_trace` do.
fn trace(value: ValueRef<'_>, seq: i64) -> Option<TraceContext> {
    let json = match value {
        ValueRef::Null => return None,
        ValueRef::Text(bytes) => std::str::from_utf8(bytes).ok(),
        _ => None,
    };
    let trace = json.and_then(TraceContext::from_json);
    if trace.is_none() {
        tracing::debug!(
            seq,
            "the stored trace context cannot be read; the event is kept without one"
        );
    }
    trace
}

/// A row, or why it cannot be read (`(seq, reason)`); `Err` only for
/// SQLite's own failures.
pub(super) fn decode_row(
    row: &rusqlite::Row<'_>,
) -> rusqlite::Result<Result<StoredEvent, (i64, String)>> {
    let seq: i64 = row.get(0)?;
    let get = |i: usize| row.get_ref(i);
    let values: Vec<ValueRef<'_>> = (1..11).map(get).collect::<rusqlite::Result<_>>()?;
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
                trace: trace(values[9], seq),
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

fn read(
    conn: &Connection,
    columns: &str,
    filter: &str,
    args: &[Value],
) -> Result<Rows, StoreError> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {columns} FROM events {filter}"))?;
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
        let (good, bad) = read(&ctx.conn, columns(ctx.trace_column), filter, args)?;
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

/// As [`select`], inside the caller's transaction (a writer's: its store
/// has every column).
pub(super) fn select_in(
    tx: &Connection,
    filter: &str,
    args: &[Value],
) -> Result<Vec<StoredEvent>, StoreError> {
    loop {
        let (good, bad) = read(tx, COLUMNS, filter, args)?;
        if bad.is_empty() {
            return Ok(good);
        }
        quarantine(tx, &bad)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::schema::create_schema;

    fn conn_with(rows: &str) -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        create_schema(&conn).unwrap();
        conn.execute_batch(rows).unwrap();
        conn
    }

    const GOOD: &str = "INSERT INTO events (seq, id, name, occurred_on, attributes, stored_at, state) VALUES \
        (1, 'a', 'acme.shop.v1.order.placed', '2026-01-01T00:00:00.000000000Z', '{}', '2026-01-01T00:00:00.000000000Z', 0);";

    #[test]
    fn a_sound_row_decodes_and_each_bad_column_says_what_is_wrong() {
        let conn = conn_with(&format!(
            "{GOOD}
             INSERT INTO events (seq, id, name, occurred_on, attributes, stored_at, state) VALUES
               (2, 'b', 'n', 'not a time', '{{}}', '2026-01-01T00:00:00Z', 0),
               (3, 'c', 'n', '2026-01-01T00:00:00Z', '{{}}', '2026-01-01T00:00:00Z', 9),
               (4, 'd', X'FF', '2026-01-01T00:00:00Z', '{{}}', '2026-01-01T00:00:00Z', 0);"
        ));
        let (good, bad) = read(&conn, COLUMNS, "ORDER BY seq", &[]).unwrap();
        assert_eq!(good.len(), 1);
        assert_eq!(good[0].event.id, EventId::from("a"));
        assert_eq!(good[0].state, EventState::Pending);
        let reasons: Vec<(i64, &str)> = bad.iter().map(|(s, r)| (*s, r.as_str())).collect();
        assert_eq!(reasons[0].0, 2);
        assert!(
            reasons[0].1.starts_with("column `occurred_on`"),
            "{reasons:?}"
        );
        assert_eq!(reasons[1], (3, "column `state` holds no known state"));
        assert_eq!(reasons[2], (4, "column `name` holds bytes, not text"));
    }

    #[test]
    fn a_stored_trace_context_reads_back_and_an_unreadable_one_is_dropped() {
        let cx = TraceContext::parse(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            Some("congo=t61rcWkgMzE"),
        )
        .unwrap();
        let conn = conn_with(&format!(
            "{GOOD}
             INSERT INTO events (seq, id, name, occurred_on, attributes, stored_at, state, trace) VALUES
               (2, 'b', 'n', '2026-01-01T00:00:00Z', '{{}}', '2026-01-01T00:00:00Z', 0, '{}'),
               (3, 'c', 'n', '2026-01-01T00:00:00Z', '{{}}', '2026-01-01T00:00:00Z', 0, 'not json'),
               (4, 'd', 'n', '2026-01-01T00:00:00Z', '{{}}', '2026-01-01T00:00:00Z', 0, X'FF');",
            cx.to_json()
        ));
        let (good, bad) = read(&conn, COLUMNS, "ORDER BY seq", &[]).unwrap();
        assert!(bad.is_empty(), "{bad:?}");
        let traces: Vec<_> = good.iter().map(|e| e.event.trace.clone()).collect();
        assert_eq!(traces, [None, Some(cx), None, None]);
        // A store without the column reads every event without a context.
        let (good, _) = read(&conn, columns(false), "ORDER BY seq", &[]).unwrap();
        assert!(good.iter().all(|e| e.event.trace.is_none()));
    }

    #[test]
    fn quarantine_moves_an_unreadable_row_out_with_its_bytes() {
        let conn = conn_with(&format!(
            "{GOOD}
             INSERT INTO events (seq, id, name, occurred_on, attributes, stored_at, state) VALUES
               (2, 'b', 'n', 'x', '{{}}', 'x', 0);"
        ));
        let (_, bad) = read(&conn, COLUMNS, "", &[]).unwrap();
        quarantine(&conn, &bad).unwrap();
        let (good, bad) = read(&conn, COLUMNS, "", &[]).unwrap();
        assert_eq!((good.len(), bad.len()), (1, 0));
        let (id, reason): (String, String) = conn
            .query_row("SELECT id, reason FROM unreadable WHERE seq = 2", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!(id, "b");
        assert!(reason.starts_with("column `occurred_on`"), "{reason}");
    }
}
