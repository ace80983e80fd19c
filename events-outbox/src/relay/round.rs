//! One relay round: claim the head rows, hand them to the bus, record what
//! became of each, commit, in one transaction.

use std::time::Duration;

use events_core::{wire, EventBus, PublishError, RawEvent};
use sqlx::{PgPool, Row};

use super::options::RelayOptions;
use crate::backoff;
use crate::error::OutboxError;

/// The `application_name` of a relay's session while it holds claimed rows
/// (what `pg_stat_activity` shows).
pub const APPLICATION_NAME: &str = "events-outbox-relay";

/// The claim: the oldest waiting rows that are the heads of their aggregates
/// (no earlier waiting row of the same key), due, and not locked by another
/// relay. Backed by `messages_pending` (the scan in `seq` order, which the
/// scan's `available_at <= now()` lets it use) and
/// `messages_pending_aggregate` (the probe for an earlier row, which states
/// no `available_at` and so cannot walk `messages_pending`: see the schema's
/// docs, `crate::schema`).
pub(crate) const CLAIM: &str = "
SELECT m.seq, m.id, m.name, m.detail, m.attempts
FROM events_outbox.messages AS m
WHERE m.published_at IS NULL AND m.dead_at IS NULL
  AND m.available_at <= now()
  AND (m.aggregate_key IS NULL OR NOT EXISTS (
        SELECT 1 FROM events_outbox.messages AS e
        WHERE e.aggregate_key = m.aggregate_key AND e.seq < m.seq
          AND e.published_at IS NULL AND e.dead_at IS NULL))
ORDER BY m.seq
LIMIT $1
FOR UPDATE OF m SKIP LOCKED";

/// What became of every claimed row, in one statement: outcome 0 published,
/// 1 retry after `delay_ms`, 2 dead letter. With `$5` (a retention of zero)
/// published rows are deleted at once rather than marked: no new row
/// version, no index entries to add.
const SETTLE: &str = "
WITH f AS (
    SELECT * FROM unnest($1::bigint[], $2::smallint[], $3::text[], $4::float8[])
        AS f(seq, outcome, error, delay_ms)
),
gone AS (
    DELETE FROM events_outbox.messages AS m USING f
    WHERE $5 AND f.outcome = 0 AND m.seq = f.seq
)
UPDATE events_outbox.messages AS m SET
    attempts = m.attempts + 1,
    last_attempt_at = now(),
    last_error = COALESCE(f.error, m.last_error),
    published_at = CASE WHEN f.outcome = 0 THEN now() END,
    dead_at = CASE WHEN f.outcome = 2 THEN now() END,
    available_at = CASE WHEN f.outcome = 1
        THEN now() + f.delay_ms * interval '1 millisecond'
        ELSE m.available_at END
FROM f
WHERE m.seq = f.seq AND NOT ($5 AND f.outcome = 0)";

const PUBLISHED: i16 = 0;
const RETRY: i16 = 1;
const DEAD: i16 = 2;

/// What one round did.
#[derive(Debug, Default)]
pub(crate) struct Round {
    /// Rows published or dead-lettered (0 when nothing was due).
    pub(crate) settled: usize,
    /// The shortest backoff given to a row that failed and waits.
    pub(crate) retry_in: Option<Duration>,
}

struct Claimed {
    seq: i64,
    id: String,
    name: String,
    attempts: i32,
}

/// Runs one round (see the module docs of [`super`]).
pub(crate) async fn run(
    pool: &PgPool,
    bus: &EventBus,
    options: &RelayOptions,
) -> Result<Round, OutboxError> {
    let lease_ms = options.lease.as_millis();
    let idle_ms = lease_ms.saturating_add((lease_ms / 4).max(1000));
    let commit = if options.async_commit {
        "; SET LOCAL synchronous_commit = off"
    } else {
        ""
    };
    let begin = format!(
        "BEGIN; SET LOCAL idle_in_transaction_session_timeout = {idle_ms}; \
         SET LOCAL application_name = '{APPLICATION_NAME}'{commit}"
    );
    let mut tx = pool.begin_with(sqlx::AssertSqlSafe(begin)).await?;
    let rows = sqlx::query(CLAIM)
        .bind(i64::try_from(options.batch).unwrap_or(i64::MAX))
        .fetch_all(&mut *tx)
        .await?;
    if rows.is_empty() {
        tx.commit().await?;
        return Ok(Round::default());
    }
    let mut claimed = Vec::with_capacity(rows.len());
    let mut outcomes: Vec<Option<Result<(), PublishError>>> = Vec::with_capacity(rows.len());
    let mut raws = Vec::with_capacity(rows.len());
    let mut sent = Vec::with_capacity(rows.len());
    for row in &rows {
        let detail: String = row.try_get("detail")?;
        claimed.push(Claimed {
            seq: row.try_get("seq")?,
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            attempts: row.try_get("attempts")?,
        });
        match wire::decode_detail(&detail) {
            Ok(raw) => {
                sent.push(claimed.len() - 1);
                raws.push(raw);
                outcomes.push(None);
            }
            Err(e) => outcomes.push(Some(Err(PublishError::permanent(
                "UnreadableRow",
                format!("the row's detail cannot be read: {e}"),
            )))),
        }
    }
    let hand = hand_off(bus, raws, options.lease).await;
    for (index, result) in sent.into_iter().zip(hand) {
        outcomes[index] = Some(result.map(|_| ()));
    }
    let mut round = Round::default();
    let mut seqs = Vec::with_capacity(claimed.len());
    let mut codes = Vec::with_capacity(claimed.len());
    let mut errors: Vec<Option<String>> = Vec::with_capacity(claimed.len());
    let mut delays = Vec::with_capacity(claimed.len());
    for (row, outcome) in claimed.iter().zip(outcomes) {
        seqs.push(row.seq);
        match outcome {
            Some(Ok(())) => {
                tracing::debug!(event = %row.name, id = %row.id, "outbox row handed to the bus");
                round.settled += 1;
                codes.push(PUBLISHED);
                errors.push(None);
                delays.push(0.0);
            }
            Some(Err(error)) if error.permanent => {
                tracing::error!(event = %row.name, id = %row.id, %error, attempts = row.attempts + 1,
                    "outbox row refused for good; it is now a dead letter");
                round.settled += 1;
                codes.push(DEAD);
                errors.push(Some(error.to_string()));
                delays.push(0.0);
            }
            failed => {
                let error = failed.and_then(Result::err).map_or_else(
                    || "internal error: no outcome for the row".to_owned(),
                    |e| e.to_string(),
                );
                let attempts = u32::try_from(row.attempts).unwrap_or(0).saturating_add(1);
                let delay = backoff::delay(attempts, options.retry_backoff, options.max_backoff);
                tracing::warn!(event = %row.name, id = %row.id, %error, attempts, retry_in = ?delay,
                    "outbox row not accepted; it waits for a retry");
                round.retry_in = Some(round.retry_in.map_or(delay, |d| d.min(delay)));
                codes.push(RETRY);
                errors.push(Some(error));
                delays.push(delay.as_secs_f64() * 1000.0);
            }
        }
    }
    sqlx::query(SETTLE)
        .bind(seqs)
        .bind(codes)
        .bind(errors)
        .bind(delays)
        .bind(options.retention.is_zero())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(round)
}

/// Hands `raws` to the bus, giving up after `lease` (every event then failed,
/// retryably).
async fn hand_off(
    bus: &EventBus,
    raws: Vec<RawEvent>,
    lease: Duration,
) -> Vec<Result<events_core::Accepted, PublishError>> {
    let count = raws.len();
    match tokio::time::timeout(lease, bus.forward(raws)).await {
        Ok(results) => results,
        Err(_) => (0..count)
            .map(|_| {
                Err(PublishError::retryable(
                    "LeaseExpired",
                    format!("the bus did not answer within the relay's lease ({lease:?})"),
                ))
            })
            .collect(),
    }
}
