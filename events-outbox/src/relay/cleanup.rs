//! The relay's retention: deleting published rows older than the retention.

use std::sync::Arc;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::RelayOptions;

/// Deletes, every `cleanup_interval`, the published rows older than the
/// retention, until `stop`.
pub(crate) async fn run(pool: PgPool, options: Arc<RelayOptions>, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(options.cleanup_interval) => {}
        }
        match crate::admin::purge_published(&pool, options.retention).await {
            Ok(0) => {}
            Ok(deleted) => tracing::debug!(deleted, "published outbox rows deleted"),
            Err(error) => {
                tracing::warn!(%error, "published outbox rows not deleted; next cleanup retries")
            }
        }
    }
}
