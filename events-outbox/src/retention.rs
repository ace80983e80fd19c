//! The retention: deleting published rows once they are old enough.

use std::time::Duration;

use sqlx::PgPool;

use crate::error::OutboxError;

/// Deletes the published rows older than `older_than` (the retention),
/// 10,000 at a time; returns how many were deleted. The relay runs it every
/// [`cleanup_interval`](crate::RelayOptions::cleanup_interval).
///
/// # Errors
///
/// [`OutboxError::Database`] when a delete fails (what was deleted before
/// stays deleted).
pub async fn purge_published(pool: &PgPool, older_than: Duration) -> Result<u64, OutboxError> {
    const CHUNK: i64 = 10_000;
    let millis = older_than.as_secs_f64() * 1000.0;
    let mut total = 0;
    loop {
        let done = sqlx::query(
            "DELETE FROM events_outbox.messages WHERE seq IN (
                SELECT seq FROM events_outbox.messages
                WHERE published_at < now() - $1 * interval '1 millisecond'
                ORDER BY published_at LIMIT $2
                FOR UPDATE SKIP LOCKED)",
        )
        .bind(millis)
        .bind(CHUNK)
        .execute(pool)
        .await?;
        total += done.rows_affected();
        if done.rows_affected() < u64::try_from(CHUNK).unwrap_or(0) {
            return Ok(total);
        }
    }
}
