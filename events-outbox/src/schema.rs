//! The outbox's schema and its migrations, run by [`migrate`].
//!
//! Everything lives in the PostgreSQL schema `events_outbox`, so nothing
//! collides with the application's own tables, and the migrations keep their
//! own version table: sqlx's `_sqlx_migrations` is left to the application's
//! migrator, which would otherwise find versions it does not know and fail.
//!
//! | object | what it is |
//! | --- | --- |
//! | `events_outbox.schema_version` | one row per migration applied (`version`, `description`, `applied_at`) |
//! | `events_outbox.messages` | one row per recorded event (below) |
//! | `events_outbox.messages_pending` | index on `seq` of the rows waiting to be relayed: the claim's scan (see [below](#why-messages_pending-names-available_at)) |
//! | `events_outbox.messages_pending_aggregate` | index on `(aggregate_key, seq)` of the waiting rows: "is there an earlier row of this aggregate?" |
//! | `events_outbox.messages_published` | index on `published_at` of the relayed rows: the retention's delete |
//! | `events_outbox.messages_dead` | index on `seq` of the dead letters |
//! | `events_outbox.messages_id_unique` | unique index on `id`: an event is recorded once |
//!
//! The columns of `events_outbox.messages`:
//!
//! | column | holds |
//! | --- | --- |
//! | `seq` | `bigint` identity, the order of the rows (per aggregate: the order their transactions committed) |
//! | `id`, `name`, `occurred_on` | the event's id, full name and time |
//! | `aggregate_key` | the aggregate's key, or `NULL` for an event with no order to keep |
//! | `detail` | the SPEC §4 detail (JSON text), byte for byte what the relay sends |
//! | `recorded_at` | when the recording transaction started (the outbox lag is measured from it) |
//! | `available_at` | not handed to the bus before this time (the backoff after a retryable failure) |
//! | `attempts`, `last_attempt_at`, `last_error` | hand-offs tried, the last one's time and the last error |
//! | `published_at` | when the bus accepted it (`NULL` while waiting) |
//! | `dead_at` | when it became a dead letter (`NULL` otherwise) |
//!
//! A row is *pending* while both `published_at` and `dead_at` are `NULL`.
//!
//! # Why `messages_pending` names `available_at`
//!
//! Its predicate is `published_at IS NULL AND dead_at IS NULL AND
//! available_at IS NOT NULL`; `available_at` is never `NULL`, so the index
//! holds exactly the pending rows. The extra clause is there for the
//! planner: the claim's scan states `available_at <= now()`, which implies
//! it, so the scan may use the index; the claim's probe ("is there an
//! earlier pending row of this aggregate?") does not state it, so the probe
//! can only use `messages_pending_aggregate`. Without it (schema version 1)
//! a planner whose statistics were taken while nearly every row was
//! published (the usual state of an outbox, before an outage leaves a
//! backlog) takes the pending rows for rare and may answer the probe by
//! walking `messages_pending` from its start, filtering on the key: one walk
//! over every earlier waiting row per claimed row, so a claim of 250 on a
//! backlog of 20,000 took seconds instead of milliseconds, just when the
//! relay had to catch up. A query that wants the index must state the
//! clause too (as [`stats`](crate::stats) and the listings do).
//!
//! Later migrations add to this schema (the inbox of SPEC §10, a table of
//! `(event id, handler name)` marks written in the handler's transaction,
//! will be the next), each applied once, in order, by the same [`migrate`].
//! The `detail` column holds whatever the wire writes, so a field the detail
//! gains (the trace context of SPEC §13) is kept with the row without a
//! migration; the relay reads it back into a `RawEvent`, which must then
//! carry that field on to the bus.

use sqlx::{Connection, PgPool};

use crate::error::OutboxError;

/// The advisory-lock class of everything the outbox locks (the first key of
/// `pg_advisory_xact_lock(int, int)`): `evob` in ASCII.
pub(crate) const LOCK_CLASS: i32 = 0x6576_6f62;

/// The second key of the migration's lock in [`LOCK_CLASS`] (aggregates lock
/// `hashtext(key)`, which may be any value: a collision only makes one wait).
const MIGRATION_LOCK: i32 = 0;

/// The channel the writers notify on commit and the relays listen to.
pub const CHANNEL: &str = "events_outbox";

/// The migrations, in order: `(version, description, SQL)`.
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (
        1,
        "messages table and its indexes",
        r"
CREATE TABLE events_outbox.messages (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id text NOT NULL,
    name text NOT NULL,
    occurred_on timestamptz NOT NULL,
    aggregate_key text,
    detail text NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    available_at timestamptz NOT NULL DEFAULT now(),
    attempts integer NOT NULL DEFAULT 0,
    last_attempt_at timestamptz,
    last_error text,
    published_at timestamptz,
    dead_at timestamptz,
    CONSTRAINT messages_id_unique UNIQUE (id)
);
CREATE INDEX messages_pending ON events_outbox.messages (seq)
    WHERE published_at IS NULL AND dead_at IS NULL;
CREATE INDEX messages_pending_aggregate ON events_outbox.messages (aggregate_key, seq)
    WHERE published_at IS NULL AND dead_at IS NULL AND aggregate_key IS NOT NULL;
CREATE INDEX messages_published ON events_outbox.messages (published_at)
    WHERE published_at IS NOT NULL;
CREATE INDEX messages_dead ON events_outbox.messages (seq)
    WHERE dead_at IS NOT NULL;
",
    ),
    (
        2,
        "messages_pending serves the claim's scan only, not its aggregate probe",
        r"
DROP INDEX events_outbox.messages_pending;
CREATE INDEX messages_pending ON events_outbox.messages (seq)
    WHERE published_at IS NULL AND dead_at IS NULL AND available_at IS NOT NULL;
",
    ),
];

/// The newest schema version this crate ships.
pub const SCHEMA_VERSION: i32 = 2;

/// Creates or upgrades the outbox's tables (see the [module docs](self)),
/// in one transaction. Idempotent, and safe to run from several processes
/// at once: they take turns on an advisory lock, and each applies only what
/// is missing. Run it at start-up, before writing or relaying.
///
/// ```no_run
/// # async fn start(pool: sqlx::PgPool) -> Result<(), events_outbox::OutboxError> {
/// events_outbox::migrate(&pool).await?;
/// # Ok(()) }
/// ```
///
/// # Errors
///
/// [`OutboxError::Database`] when the database cannot be reached or refuses
/// a statement (nothing is half applied: the transaction rolls back), and
/// [`OutboxError::SchemaTooNew`] when a newer events-outbox already migrated
/// this database.
pub async fn migrate(pool: &PgPool) -> Result<(), OutboxError> {
    let mut conn = pool.acquire().await?;
    let mut tx = conn.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
        .bind(LOCK_CLASS)
        .bind(MIGRATION_LOCK)
        .execute(&mut *tx)
        .await?;
    // `IF NOT EXISTS` answers with a NOTICE when the object exists, which
    // sqlx logs at info: a service would log two lines at every start. The
    // level is the transaction's only (`SET LOCAL`): the connection goes
    // back to the pool with its own.
    sqlx::raw_sql(
        "SET LOCAL client_min_messages = warning;
         CREATE SCHEMA IF NOT EXISTS events_outbox;
         CREATE TABLE IF NOT EXISTS events_outbox.schema_version (
             version integer PRIMARY KEY,
             description text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         );",
    )
    .execute(&mut *tx)
    .await?;
    let current: Option<i32> =
        sqlx::query_scalar("SELECT max(version) FROM events_outbox.schema_version")
            .fetch_one(&mut *tx)
            .await?;
    let current = current.unwrap_or(0);
    if current > SCHEMA_VERSION {
        return Err(OutboxError::SchemaTooNew {
            found: current,
            known: SCHEMA_VERSION,
        });
    }
    for &(version, description, sql) in MIGRATIONS {
        if version <= current {
            continue;
        }
        sqlx::raw_sql(sql).execute(&mut *tx).await?;
        sqlx::query(
            "INSERT INTO events_outbox.schema_version (version, description) VALUES ($1, $2)",
        )
        .bind(version)
        .bind(description)
        .execute(&mut *tx)
        .await?;
        tracing::info!(version, description, "outbox schema migrated");
    }
    tx.commit().await?;
    Ok(())
}
