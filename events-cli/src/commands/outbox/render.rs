//! Rendering the outbox's stats and rows for people and for `--json`.

use std::io::{self, Write};

use events_core::wire::format_time;
use events_outbox::{OutboxRow, OutboxStats};
use serde_json::{json, Value};

/// An output stream.
type Out<'a> = &'a mut (dyn Write + Send);

/// The stats as JSON (`lag_ms` null when nothing waits).
pub(super) fn stats_json(stats: &OutboxStats) -> Value {
    json!({
        "pending": stats.pending,
        "dead_letters": stats.dead_letters,
        "published": stats.published,
        "oldest_pending": stats.oldest_pending.map(format_time),
        "lag_ms": stats.lag.map(|lag| u64::try_from(lag.as_millis()).unwrap_or(u64::MAX)),
    })
}

/// The stats as labelled lines.
pub(super) fn stats(out: Out<'_>, stats: &OutboxStats) -> io::Result<()> {
    writeln!(out, "{:<14}{}", "pending:", stats.pending)?;
    writeln!(out, "{:<14}{}", "dead letters:", stats.dead_letters)?;
    writeln!(
        out,
        "{:<14}{}  (kept within the retention)",
        "published:", stats.published
    )?;
    match (stats.lag, stats.oldest_pending) {
        (Some(lag), Some(oldest)) => writeln!(
            out,
            "{:<14}{:.3} s  (the oldest waiting row, recorded {})",
            "lag:",
            lag.as_secs_f64(),
            format_time(oldest)
        ),
        _ => writeln!(out, "{:<14}0  (nothing waiting)", "lag:"),
    }
}

fn row_json(row: &OutboxRow) -> Value {
    json!({
        "seq": row.seq,
        "id": row.id,
        "name": row.name,
        "occurred_on": format_time(row.occurred_on),
        "aggregate_key": row.aggregate_key,
        "recorded_at": format_time(row.recorded_at),
        "available_at": format_time(row.available_at),
        "attempts": row.attempts,
        "last_attempt_at": row.last_attempt_at.map(format_time),
        "last_error": row.last_error,
        "dead_at": row.dead_at.map(format_time),
    })
}

/// Rows: one JSON object a line, or one line each (`empty` when none).
pub(super) fn rows(out: Out<'_>, rows: &[OutboxRow], json: bool, empty: &str) -> io::Result<()> {
    if json {
        for row in rows {
            writeln!(out, "{}", row_json(row))?;
        }
        return Ok(());
    }
    if rows.is_empty() {
        return writeln!(out, "{empty}");
    }
    for row in rows {
        write!(
            out,
            "{:>8}  {}  {}  aggregate={}  attempts={}",
            row.seq,
            row.id,
            row.name,
            row.aggregate_key.as_deref().unwrap_or("-"),
            row.attempts
        )?;
        if let Some(error) = &row.last_error {
            write!(out, "  last error: {error}")?;
        }
        writeln!(out)?;
    }
    Ok(())
}
