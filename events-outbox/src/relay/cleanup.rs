//! The relay's housekeeping: deleting published rows older than the
//! retention, and setting the outbox's gauges.

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
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = gauges.tick() => {
                if let Err(error) = crate::admin::record_gauges(&pool).await {
                    tracing::debug!(error = %one_line(&error), "outbox gauges not set; next interval retries");
                }
            }
            _ = cleanup.tick() => {
                match crate::retention::purge_published(&pool, options.retention).await {
                    Ok(0) => {}
                    Ok(deleted) => tracing::debug!(deleted, "published outbox rows deleted"),
                    Err(error) => tracing::warn!(error = %one_line(&error), "published outbox rows not deleted; next cleanup retries"),
                }
            }
        }
    }
}
