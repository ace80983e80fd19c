//! Rendering for people and for `--json`: the event table, an event's
//! fields, the stats table and the JSON summaries.

use std::io::{self, Write};
use std::path::Path;

use events_core::store::{StoreStats, StoredEvent, UnreadableRow};
use events_core::wire::format_time;
use serde_json::{json, Value};

/// An output stream.
type Out<'a> = &'a mut (dyn Write + Send);

/// The stats as labelled lines, each with its note; `local_pending`: how
/// many pending events a local-mode bus stored.
pub(crate) fn stats(
    out: Out<'_>,
    path: &Path,
    stats: &StoreStats,
    local_pending: u64,
) -> io::Result<()> {
    let rows = [
        ("store", path.display().to_string(), String::new()),
        (
            "pending",
            stats.pending.to_string(),
            // What pending means in each mode: the store's own sentence.
            stats.pending_meaning(local_pending),
        ),
        (
            "handled",
            stats.handled.to_string(),
            "handled in process (local mode), kept as a journal within the retention".to_owned(),
        ),
        ("dead letters", stats.dead.to_string(), String::new()),
        (
            "unreadable",
            stats.unreadable.to_string(),
            if stats.unreadable > 0 {
                "damaged rows moved out of the queue; see `events dead-letters`".to_owned()
            } else {
                String::new()
            },
        ),
    ];
    let width = rows.iter().map(|r| r.1.len()).max().unwrap_or(0);
    for (label, value, note) in rows {
        let label = format!("{label}:");
        if note.is_empty() {
            writeln!(out, "{label:<14}{value}")?;
        } else {
            writeln!(out, "{label:<14}{value:<width$}  ({note})")?;
        }
    }
    Ok(())
}

/// One event with its attributes: a JSON object, or one field a line.
pub(crate) fn event(out: Out<'_>, event: &StoredEvent, json: bool) -> io::Result<()> {
    let mut value = summary(event);
    value["attributes"] = serde_json::from_str(&event.event.attributes)
        .unwrap_or(Value::String(event.event.attributes.clone()));
    if json {
        return writeln!(out, "{value}");
    }
    for key in [
        "id",
        "name",
        "occurred_on",
        "stored_at",
        "seq",
        "state",
        "attempts",
        "last_error",
        "last_attempt_at",
    ] {
        if let Some(v) = value.get(key).filter(|v| !v.is_null()) {
            writeln!(
                out,
                "{:<17}{}",
                format!("{key}:"),
                v.as_str().map_or_else(|| v.to_string(), str::to_owned)
            )?;
        }
    }
    let attributes =
        serde_json::to_string_pretty(&value["attributes"]).map_err(io::Error::other)?;
    writeln!(out, "attributes:      {attributes}")
}

/// A stored event's fields, attributes aside, as JSON.
pub(crate) fn summary(event: &StoredEvent) -> Value {
    json!({
        "seq": event.seq,
        "id": event.event.id.as_str(),
        "name": event.event.name,
        "occurred_on": format_time(event.event.occurred_on),
        "stored_at": format_time(event.stored_at),
        "state": event.state.as_str(),
        "attempts": event.attempts,
        "last_error": event.last_error,
        "last_attempt_at": event.last_attempt_at.map(format_time),
    })
}

/// An unreadable row as JSON, its raw columns as text where they are UTF-8.
pub(crate) fn unreadable_summary(row: &UnreadableRow) -> Value {
    let columns: serde_json::Map<String, Value> = row
        .columns
        .iter()
        .map(|(name, bytes)| {
            let value = match bytes {
                None => Value::Null,
                Some(bytes) => match std::str::from_utf8(bytes) {
                    Ok(text) => Value::String(text.to_owned()),
                    Err(_) => Value::Array(bytes.iter().map(|b| json!(b)).collect()),
                },
            };
            (name.clone(), value)
        })
        .collect();
    json!({
        "seq": row.seq,
        "id": row.id,
        "state": "unreadable",
        "reason": row.reason,
        "found_at": format_time(row.found_at),
        "raw": columns,
    })
}

/// The unreadable rows, one a line under a heading.
pub(crate) fn unreadable_rows(out: Out<'_>, rows: &[UnreadableRow]) -> io::Result<()> {
    writeln!(out, "unreadable rows (kept with their raw bytes):")?;
    for row in rows {
        writeln!(
            out,
            "{:>6}  {}  {}  found {}",
            row.seq,
            row.id,
            row.reason,
            format_time(row.found_at)
        )?;
    }
    Ok(())
}

/// One line per event, in aligned columns under a header (or a JSON array).
pub(crate) fn events(out: Out<'_>, events: &[StoredEvent], json: bool) -> io::Result<()> {
    if json {
        let list: Vec<Value> = events.iter().map(summary).collect();
        return writeln!(out, "{}", Value::Array(list));
    }
    let rows: Vec<[String; 7]> = events
        .iter()
        .map(|e| {
            [
                e.seq.to_string(),
                e.event.id.to_string(),
                e.event.name.clone(),
                format_time(e.event.occurred_on),
                e.attempts.to_string(),
                e.last_attempt_at
                    .map_or_else(|| "-".to_owned(), format_time),
                e.last_error.clone().unwrap_or_else(|| "-".to_owned()),
            ]
        })
        .collect();
    let header = [
        "SEQ",
        "ID",
        "NAME",
        "OCCURRED ON",
        "ATTEMPTS",
        "LAST ATTEMPT",
        "LAST ERROR",
    ];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 7]| {
        let mut text = String::new();
        for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
            if i == 6 {
                text.push_str(cell);
            } else if i == 0 || i == 4 {
                text.push_str(&format!("{cell:>width$}  "));
            } else {
                text.push_str(&format!("{cell:<width$}  "));
            }
        }
        text.trim_end().to_owned()
    };
    writeln!(out, "{}", line(header))?;
    for row in &rows {
        writeln!(out, "{}", line(row.each_ref().map(String::as_str)))?;
    }
    Ok(())
}
