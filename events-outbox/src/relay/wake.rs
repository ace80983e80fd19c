//! The relay's listener: `LISTEN` on the outbox channel, waking the workers
//! on every commit notification, reconnecting by itself.

use std::sync::Arc;

use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{FIRST_RECONNECT, MAX_RECONNECT};
use crate::backoff;
use crate::schema::CHANNEL;

/// Listens until `stop`. Each worker is woken on a notification, and also
/// whenever the connection was (re)established, since notifications sent
/// while it was down are lost.
pub(crate) async fn listen(pool: PgPool, wakers: Vec<Arc<Notify>>, stop: CancellationToken) {
    let wake_all = || wakers.iter().for_each(|w| w.notify_one());
    let mut failures = 0u32;
    loop {
        let connected = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        let result = tokio::select! {
            () = stop.cancelled() => return,
            result = connected => result,
        };
        let mut listener = match result {
            Ok(listener) => listener,
            Err(error) => {
                failures = failures.saturating_add(1);
                let wait = backoff::delay(failures, FIRST_RECONNECT, MAX_RECONNECT);
                tracing::warn!(%error, retry_in = ?wait, "outbox relay cannot listen for commits; polling meanwhile");
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(wait) => continue,
                }
            }
        };
        if failures > 0 {
            tracing::info!("outbox relay listening for commits again");
        }
        failures = 0;
        wake_all();
        loop {
            let next = tokio::select! {
                () = stop.cancelled() => return,
                next = listener.try_recv() => next,
            };
            match next {
                Ok(Some(_)) => wake_all(),
                // The connection was lost and is being re-established:
                // whatever was notified meanwhile is gone, so look.
                Ok(None) => {
                    tracing::debug!("outbox listener reconnected");
                    wake_all();
                }
                Err(error) => {
                    tracing::warn!(%error, "outbox relay lost its commit listener; reconnecting");
                    wake_all();
                    break;
                }
            }
        }
    }
}
