//! The transactional outbox on PostgreSQL (SPEC §10): events written in the
//! caller's own transaction, in the same commit as the aggregate's rows, and
//! relayed to an [`EventBus`](events_core::EventBus) once committed: in order
//! per aggregate, by as many relays as the service has instances, none lost.
//!
//! ```
//! use events_core::{DomainEvent, EventBus, Recorder};
//! use events_outbox::{Relay, RelayOptions};
//!
//! #[derive(DomainEvent, Debug, Clone)]
//! #[event(company = "testclean", service = "api", version = 1, resource = "company", action = "created")]
//! struct CompanyCreated { company_name: String }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # // A PostgreSQL of the project's test harness, on 127.0.0.1.
//! # let server = tokio::task::spawn_blocking(events_pg_tests::PgServer::start).await?;
//! # let database_url = server.database().url;
//! // database_url: the service's DATABASE_URL.
//! let pool = sqlx::PgPool::connect(&database_url).await?;
//! events_outbox::migrate(&pool).await?;
//! # sqlx::query("CREATE TABLE companies (id text PRIMARY KEY, name text)").execute(&pool).await?;
//! // The service's bus (`EventBus::from_env().await?` in a service).
//! let bus = EventBus::builder().in_memory_store().build()?;
//! let relay = Relay::spawn(pool.clone(), bus, RelayOptions::default());
//!
//! // A use case: save the aggregate and record its events, in one transaction.
//! let mut events = Recorder::new();
//! events.record(CompanyCreated { company_name: "Acme".into() });
//! let mut tx = pool.begin().await?;
//! sqlx::query("INSERT INTO companies (id, name) VALUES ($1, $2)")
//!     .bind("c-1").bind("Acme").execute(&mut *tx).await?;
//! events_outbox::write_recorded(&mut tx, "c-1", &mut events).await?;
//! tx.commit().await?; // the relay publishes the event now, never before
//!
//! # // Bounded polling: the relay marks the row once the bus took it.
//! # for _ in 0..600 {
//! #     if events_outbox::stats(&pool).await?.published == 1 { break; }
//! #     tokio::time::sleep(std::time::Duration::from_millis(50)).await;
//! # }
//! assert_eq!(events_outbox::stats(&pool).await?.published, 1);
//! relay.stop().await?;
//! # Ok(()) }
//! ```
//!
//! - **Writing** ([`write_recorded`], [`write()`], [`write_raw`]): inside the
//!   caller's transaction, so a row exists if and only if it commits; with
//!   the aggregate's own statement in the same round trip:
//!   [`write_recorded_with`], [`write_with()`], [`write_raw_with`] ([`write_with`](mod@write_with));
//!   `write_recorded` empties the aggregate's [`Recorder`](events_core::Recorder),
//!   so the events cannot also be published directly before the commit.
//!   Writers of one aggregate take turns until commit ([`write`](mod@write)
//!   says why).
//! - **Relaying** ([`Relay`], [`run`]): claims only the head row of each
//!   aggregate, hands it to the bus with [`EventBus::forward`](events_core::EventBus::forward),
//!   and marks it once accepted; retryable failures back off, permanent ones
//!   become dead letters ([`relay`] has the details and the table of
//!   outcomes).
//! - **Schema** ([`migrate`]): the tables and indexes in the schema
//!   `events_outbox`, with their own version table ([`schema`] lists them).
//! - **Operating** ([`stats`] with the outbox lag, [`record_gauges`], [`list_pending`],
//!   [`list_dead_letters`], [`requeue`], [`purge_published`],
//!   [`explain_claim`]).
//!
//! Delivery is at least once: an event accepted by the bus just before a
//! relay died, and not yet marked, is handed over again. Consumers
//! deduplicate by event id (the SQS consumer's dedup does).
//!
//! # Features
//!
//! It is PostgreSQL through `sqlx` (runtime queries, rustls on ring) on
//! tokio, always. One optional feature:
//!
//! | feature | what it adds |
//! | --- | --- |
//! | `otel` | writes keep the OpenTelemetry context of the span they are called in, in each row's detail (SPEC §13; `events-core`'s `otel`) |

pub mod admin;
mod backoff;
pub mod error;
mod placeholders;
pub mod relay;
mod retention;
pub mod schema;
pub mod write;
pub mod write_with;

pub use admin::{
    explain_claim, list_dead_letters, list_pending, record_gauges, requeue, stats, OutboxRow,
    OutboxStats,
};
pub use error::OutboxError;
pub use relay::{run, run_until, Relay, RelayOptions};
pub use retention::purge_published;
pub use schema::{migrate, CHANNEL, SCHEMA_VERSION};
pub use write::{write, write_raw, write_recorded};
pub use write_with::{write_raw_with, write_recorded_with, write_with};
