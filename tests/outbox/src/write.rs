//! Writers: committing `Numbered` events into the outbox, each in its own transaction, through a database that may be down.

use std::time::Duration;

use events_core::Event;
use events_outbox::OutboxError;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

use crate::Numbered;

/// A pool on `url` whose connections give up quickly when the server is
/// down (the crash tests kill it), so writers and relays retry instead of
/// hanging.
///
/// # Errors
///
/// When the server cannot be reached.
pub async fn connect(url: &str, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect(url)
        .await
}

/// An event committed to the outbox: its id and aggregate key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// The event's id.
    pub id: String,
    /// The aggregate key it was written under.
    pub key: String,
}

/// Commits `Numbered { writer, n }` under `key` in a transaction of its
/// own, retrying through errors until it is known to be committed: after a
/// failed commit whose outcome is unknown (the server died), writing the
/// same event again is refused as a duplicate if the first commit went
/// through, which says it did. Gives up after `deadline`.
///
/// # Errors
///
/// The last error, once the deadline passed.
pub async fn write_numbered(
    pool: &PgPool,
    writer: u32,
    n: u32,
    key: &str,
    deadline: std::time::Instant,
) -> Result<Committed, OutboxError> {
    let event = Event::new(Numbered { writer, n });
    let id = event.id().as_str().to_owned();
    loop {
        let attempt = async {
            let mut tx = pool.begin().await?;
            events_outbox::write(&mut tx, Some(key), [event.clone()]).await?;
            tx.commit().await?;
            Ok::<(), OutboxError>(())
        };
        match attempt.await {
            Ok(()) | Err(OutboxError::DuplicateEvent { .. }) => {
                return Ok(Committed {
                    id,
                    key: key.to_owned(),
                })
            }
            Err(e) if std::time::Instant::now() > deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}
