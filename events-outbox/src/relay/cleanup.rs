//! The relay's housekeeping: deleting published rows older than the
//! retention, setting the outbox's gauges, and giving the planner the
//! outbox's statistics when it has none yet.

use std::sync::Arc;

use events_core::__private::one_line;
use sqlx::PgPool;
use tokio::time::{interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::options::RelayOptions;

/// Every `cleanup_interval` deletes the published rows older than the
/// retention, and every `gauges_interval` sets the gauges, until `stop`.
pub(crate) async fn run(pool: PgPool, options: Arc<RelayOptions>, stop: CancellationToken) {
    let mut cleanup = interval(
        options
            .cleanup_interval
            .max(std::time::Duration::from_millis(1)),
    );
    let mut gauges = interval(
        options
            .gauges_interval
            .max(std::time::Duration::from_millis(1)),
    );
    cleanup.set_missed_tick_behavior(MissedTickBehavior::Delay);
    gauges.set_missed_tick_behavior(MissedTickBehavior::Delay);
    // The first ticks are immediate: the first cleanup waits one interval.
    cleanup.tick().await;
    analyze_if_unknown(&pool).await;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = gauges.tick() => {
                if let Err(error) = crate::admin::record_gauges(&pool).await {
                    tracing::debug!(error = %one_line(&error), "outbox gauges not set; next interval retries");
                }
            }
            _ = cleanup.tick() => {
                analyze_if_unknown(&pool).await;
                match crate::retention::purge_published(&pool, options.retention).await {
                    Ok(0) => {}
                    Ok(deleted) => tracing::debug!(deleted, "published outbox rows deleted"),
                    Err(error) => tracing::warn!(error = %one_line(&error), "published outbox rows not deleted; next cleanup retries"),
                }
            }
        }
    }
}

/// Whether the planner has statistics of `messages` (`pg_stats` rows, which
/// `ANALYZE` writes once the table has rows).
const HAS_STATISTICS: &str = "
SELECT EXISTS (SELECT 1 FROM pg_stats
    WHERE schemaname = 'events_outbox' AND tablename = 'messages' AND attname = 'published_at')";

/// Runs `ANALYZE events_outbox.messages` when the table has no statistics
/// yet: a table filled faster than autovacuum's first analyze (a backlog
/// before the first relay starts, a fresh service's first minute). Without
/// statistics every estimate is a row or two; the claim's probe cannot walk
/// the wrong index any more (schema version 2, see `crate::schema`), but
/// the rest of its plan and the listings are better planned on the table's
/// real shape. A role
/// that may not analyze the table is skipped by PostgreSQL with a warning;
/// autovacuum then supplies the statistics, later.
async fn analyze_if_unknown(pool: &PgPool) {
    let known = sqlx::query_scalar::<_, bool>(HAS_STATISTICS)
        .fetch_one(pool)
        .await;
    match known {
        Ok(true) => {}
        Ok(false) => match sqlx::query("ANALYZE events_outbox.messages")
            .execute(pool)
            .await
        {
            Ok(_) => tracing::debug!("outbox table analyzed (it had no statistics)"),
            Err(error) => tracing::debug!(%error, "outbox table not analyzed"),
        },
        Err(error) => tracing::debug!(%error, "outbox statistics not looked up"),
    }
}
