//! Looking into the outbox and repairing it: stats (the outbox lag), waiting
//! rows, dead letters, requeue, the claim's plan (what the `events outbox
//! ...` commands run).

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};

use crate::error::OutboxError;

/// The state of the outbox, from [`stats`].
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxStats {
    /// Rows waiting to be relayed (backing off ones included).
    pub pending: u64,
    /// Dead letters.
    pub dead_letters: u64,
    /// Published rows still kept (within the retention).
    pub published: u64,
    /// When the oldest waiting row was recorded.
    pub oldest_pending: Option<DateTime<Utc>>,
    /// The outbox lag: the age of the oldest waiting row, by the database's
    /// clock (`None` when nothing waits). The signal to alert on: it grows
    /// when the relay is down, stuck or behind.
    pub lag: Option<Duration>,
}

/// One outbox row, as [`list_pending`] and [`list_dead_letters`] show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    /// The row's sequence number (the relay's order).
    pub seq: i64,
    /// The event's id.
    pub id: String,
    /// The event's name.
    pub name: String,
    /// When the event happened.
    pub occurred_on: DateTime<Utc>,
    /// The aggregate's key, if any.
    pub aggregate_key: Option<String>,
    /// When its transaction recorded it.
    pub recorded_at: DateTime<Utc>,
    /// Not handed over before this time (backoff).
    pub available_at: DateTime<Utc>,
    /// Hand-offs tried.
    pub attempts: i32,
    /// The last hand-off's time.
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// The last error.
    pub last_error: Option<String>,
    /// When it became a dead letter.
    pub dead_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "seq, id, name, occurred_on, aggregate_key, recorded_at, available_at, \
                       attempts, last_attempt_at, last_error, dead_at";

fn row(row: &PgRow) -> Result<OutboxRow, sqlx::Error> {
    Ok(OutboxRow {
        seq: row.try_get("seq")?,
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        occurred_on: row.try_get("occurred_on")?,
        aggregate_key: row.try_get("aggregate_key")?,
        recorded_at: row.try_get("recorded_at")?,
        available_at: row.try_get("available_at")?,
        attempts: row.try_get("attempts")?,
        last_attempt_at: row.try_get("last_attempt_at")?,
        last_error: row.try_get("last_error")?,
        dead_at: row.try_get("dead_at")?,
    })
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn limit(max: usize) -> i64 {
    i64::try_from(max).unwrap_or(i64::MAX)
}

/// Counts of waiting rows, dead letters and kept published rows, and the
/// outbox lag. Each count walks its partial index only.
///
/// # Errors
///
/// [`OutboxError::Database`] when the query fails.
pub async fn stats(pool: &PgPool) -> Result<OutboxStats, OutboxError> {
    let r = sqlx::query(
        "SELECT
            (SELECT count(*) FROM events_outbox.messages
                WHERE published_at IS NULL AND dead_at IS NULL
                  AND available_at IS NOT NULL) AS pending,
            (SELECT count(*) FROM events_outbox.messages WHERE dead_at IS NOT NULL) AS dead,
            (SELECT count(*) FROM events_outbox.messages WHERE published_at IS NOT NULL) AS published,
            o.recorded_at AS oldest,
            extract(epoch FROM now() - o.recorded_at)::float8 AS lag
         FROM (SELECT 1) AS one
         LEFT JOIN LATERAL (
            SELECT recorded_at FROM events_outbox.messages
            WHERE published_at IS NULL AND dead_at IS NULL AND available_at IS NOT NULL
            ORDER BY seq LIMIT 1
         ) AS o ON true",
    )
    .fetch_one(pool)
    .await?;
    let lag: Option<f64> = r.try_get("lag")?;
    Ok(OutboxStats {
        pending: count(r.try_get("pending")?),
        dead_letters: count(r.try_get("dead")?),
        published: count(r.try_get("published")?),
        oldest_pending: r.try_get("oldest")?,
        lag: lag.map(|s| Duration::try_from_secs_f64(s.max(0.0)).unwrap_or_default()),
    })
}

/// Reads [`stats`] and sets the gauges `events_outbox_pending` and
/// `events_outbox_oldest_pending_age_seconds` (0 when nothing waits)
/// through the `metrics` facade (names in `events_core::metrics`; no
/// recorder installed: without one this only reads). A running [`Relay`](crate::Relay)
/// calls it every [`gauges_interval`](crate::RelayOptions::gauges_interval).
///
/// # Errors
///
/// As [`stats`]; the gauges keep their last values.
pub async fn record_gauges(pool: &PgPool) -> Result<OutboxStats, OutboxError> {
    let stats = stats(pool).await?;
    // Counts far below 2^53: exact as f64.
    #[allow(clippy::cast_precision_loss)]
    metrics::gauge!(events_core::metrics::OUTBOX_PENDING).set(stats.pending as f64);
    metrics::gauge!(events_core::metrics::OUTBOX_OLDEST_PENDING_AGE)
        .set(stats.lag.unwrap_or_default().as_secs_f64());
    Ok(stats)
}

/// Up to `max` waiting rows, oldest first.
///
/// # Errors
///
/// [`OutboxError::Database`] when the query fails.
pub async fn list_pending(pool: &PgPool, max: usize) -> Result<Vec<OutboxRow>, OutboxError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM events_outbox.messages
         WHERE published_at IS NULL AND dead_at IS NULL AND available_at IS NOT NULL
         ORDER BY seq LIMIT $1"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(limit(max))
        .fetch_all(pool)
        .await?;
    Ok(rows.iter().map(row).collect::<Result<_, _>>()?)
}

/// Up to `max` dead letters, oldest first, with their error, attempts and
/// last attempt.
///
/// # Errors
///
/// [`OutboxError::Database`] when the query fails.
pub async fn list_dead_letters(pool: &PgPool, max: usize) -> Result<Vec<OutboxRow>, OutboxError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM events_outbox.messages
         WHERE dead_at IS NOT NULL ORDER BY seq LIMIT $1"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(limit(max))
        .fetch_all(pool)
        .await?;
    Ok(rows.iter().map(row).collect::<Result<_, _>>()?)
}

/// Puts the dead letter with event id `id` back to wait, due now (its
/// attempts and last error are kept). `false` when no dead letter has this
/// id. It keeps its place (`seq`): if later rows of its aggregate already
/// left, it is handed over after them; if some still wait, before them.
///
/// # Errors
///
/// [`OutboxError::Database`] when the update fails.
pub async fn requeue(pool: &PgPool, id: &str) -> Result<bool, OutboxError> {
    let done = sqlx::query(
        "UPDATE events_outbox.messages SET dead_at = NULL, available_at = now()
         WHERE id = $1 AND dead_at IS NOT NULL",
    )
    .bind(id)
    .execute(pool)
    .await?;
    let requeued = done.rows_affected() > 0;
    if requeued {
        tracing::info!(%id, "outbox dead letter requeued");
        notify(pool).await;
    }
    Ok(requeued)
}

/// Wakes the relays (best effort: they poll anyway).
async fn notify(pool: &PgPool) {
    if let Err(error) = sqlx::query("SELECT pg_notify($1, '')")
        .bind(crate::schema::CHANNEL)
        .execute(pool)
        .await
    {
        tracing::debug!(%error, "relays not notified; they find the row on their next poll");
    }
}

/// The plan PostgreSQL chooses for the relay's claim of `batch` rows
/// (`EXPLAIN`, text format, one line per row): check that it walks
/// `messages_pending` on your table rather than scanning it.
///
/// # Errors
///
/// [`OutboxError::Database`] when the query fails.
pub async fn explain_claim(pool: &PgPool, batch: usize) -> Result<String, OutboxError> {
    let sql = format!("EXPLAIN {}", crate::relay::CLAIM);
    let lines: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(limit(batch))
        .fetch_all(pool)
        .await?;
    Ok(lines.join("\n"))
}
