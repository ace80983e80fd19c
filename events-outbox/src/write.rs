//! Writing events into the outbox inside the caller's own transaction.
//!
//! # Order per aggregate
//!
//! `seq` values are handed out when rows are inserted, not when their
//! transactions commit: two transactions recording events of the *same*
//! aggregate could commit in the other order than their `seq`s, and a relay
//! that saw only the later one would send it first. So a write with an
//! aggregate key first takes a transaction-scoped advisory lock on that key
//! (`pg_advisory_xact_lock(class, hashtext(key))`, in the same statement as
//! the insert, so it holds even outside an explicit transaction): writers of
//! one aggregate take turns until commit, and within an aggregate `seq` order
//! is commit order. Writers of different aggregates never wait for each other
//! (but for a hash collision, which only makes one wait).
//!
//! A transaction that records events of several aggregates takes their locks
//! in the order of its writes; two such transactions taking the same keys in
//! opposite orders deadlock, and PostgreSQL aborts one of them (retry it).
//! Write the aggregates of one transaction in a fixed order (by key) to rule
//! that out.
//!
//! # Trace context
//!
//! With the `otel` feature, [`write()`] and [`write_recorded`] keep the
//! context of the span they are called in (its OpenTelemetry context,
//! through `tracing-opentelemetry`) in each row's detail (`_trace`, SPEC
//! §13): the relay sends the event with it, so the consumer's `process`
//! span continues the request's trace. [`write_raw`] keeps each event's own
//! [`trace`](RawEvent::trace) as it is.

use events_core::{wire, AnyEvent, RawEvent, Recorder};
use sqlx::PgConnection;

use crate::error::OutboxError;
use crate::schema::{CHANNEL, LOCK_CLASS};

/// The insert: the aggregate's lock and the commit notification are
/// one-row relations joined to the events, so both happen before the first
/// row is inserted (a join yields no row before each side produced one),
/// in one round trip.
const INSERT: &str = "
WITH locked AS MATERIALIZED (
    SELECT count(*) FROM (
        SELECT pg_advisory_xact_lock($1, hashtext($2::text)) WHERE $2::text IS NOT NULL
    ) AS l
),
notified AS MATERIALIZED (
    SELECT count(*) FROM (SELECT pg_notify($3, '')) AS n
)
INSERT INTO events_outbox.messages (id, name, occurred_on, aggregate_key, detail)
SELECT e.id, e.name, e.occurred_on, $2::text, e.detail
FROM locked, notified,
     unnest($4::text[], $5::text[], $6::timestamptz[], $7::text[])
         WITH ORDINALITY AS e(id, name, occurred_on, detail, ord)
ORDER BY e.ord";

/// Writes everything `recorder` holds into the outbox, in the caller's
/// transaction, under `aggregate_key`, then empties the recorder: the events
/// now leave through the relay once (and only if) the transaction commits,
/// and a later [`EventBus::publish_recorded`](events_core::EventBus::publish_recorded)
/// of the same recorder has nothing to send twice. On error the recorder
/// keeps its events.
///
/// Call it in the transaction that saves the aggregate:
///
/// ```no_run
/// # use events_core::{DomainEvent, Recorder};
/// # #[derive(DomainEvent, Debug, Clone)]
/// # #[event(company = "testclean", service = "api", version = 1, resource = "company", action = "created")]
/// # struct CompanyCreated { company_name: String }
/// # async fn save(pool: &sqlx::PgPool) -> Result<(), events_outbox::OutboxError> {
/// let mut events = Recorder::new();
/// events.record(CompanyCreated { company_name: "Acme".into() });
///
/// let mut tx = pool.begin().await?;
/// sqlx::query("INSERT INTO companies (id, name) VALUES ($1, $2)")
///     .bind("c-1")
///     .bind("Acme")
///     .execute(&mut *tx)
///     .await?;
/// events_outbox::write_recorded(&mut tx, "c-1", &mut events).await?;
/// tx.commit().await?; // the company and its event, or neither
/// assert!(events.is_empty());
/// # Ok(()) }
/// ```
///
/// `conn` is the transaction (`&mut tx`, a `sqlx::Transaction<'_, Postgres>`
/// dereferences to it) or a connection inside one. A connection with no
/// transaction open (`&mut pool.acquire().await?`) is refused: the write
/// would be a transaction of its own, committed at once, whatever becomes
/// of the aggregate.
///
/// # Errors
///
/// [`OutboxError::Encode`] when an event's attributes cannot be serialized,
/// [`OutboxError::NotInTransaction`] when `conn` has no transaction open,
/// [`OutboxError::DuplicateEvent`] when an event with one of these ids is
/// already in the outbox, [`OutboxError::Database`] when the insert fails
/// (the transaction is then aborted, as after any failed statement).
pub async fn write_recorded(
    conn: &mut PgConnection,
    aggregate_key: &str,
    recorder: &mut Recorder,
) -> Result<usize, OutboxError> {
    let raws = encode(recorder.events())?;
    let written = write_raw(conn, Some(aggregate_key), &raws).await?;
    recorder.clear();
    Ok(written)
}

/// Writes `events` (bare events or `Event<E>`s, of any types) into the
/// outbox in the caller's transaction, in order, under `aggregate_key`
/// (`None` for events with no order to keep among them). Returns how many
/// rows were written.
///
/// # Errors
///
/// As [`write_recorded`].
pub async fn write<I>(
    conn: &mut PgConnection,
    aggregate_key: Option<&str>,
    events: I,
) -> Result<usize, OutboxError>
where
    I: IntoIterator,
    I::Item: Into<AnyEvent>,
{
    let events: Vec<AnyEvent> = events.into_iter().map(Into::into).collect();
    let raws = encode(&events)?;
    write_raw(conn, aggregate_key, &raws).await
}

/// Writes raw events (received, or built by hand) into the outbox in the
/// caller's transaction, in order, under `aggregate_key`.
///
/// # Errors
///
/// As [`write_recorded`], without the encoding error.
pub async fn write_raw(
    conn: &mut PgConnection,
    aggregate_key: Option<&str>,
    events: &[RawEvent],
) -> Result<usize, OutboxError> {
    if !sqlx::Connection::is_in_transaction(conn) {
        return Err(OutboxError::NotInTransaction);
    }
    if events.is_empty() {
        return Ok(0);
    }
    let columns = Columns::of(events);
    let done = sqlx::query(INSERT)
        .bind(LOCK_CLASS)
        .bind(aggregate_key)
        .bind(CHANNEL)
        .bind(columns.ids)
        .bind(columns.names)
        .bind(columns.times)
        .bind(columns.details)
        .execute(conn)
        .await
        .map_err(OutboxError::from_write)?;
    tracing::debug!(
        count = done.rows_affected(),
        aggregate = aggregate_key,
        "events written to the outbox"
    );
    Ok(usize::try_from(done.rows_affected()).unwrap_or(usize::MAX))
}

/// The events as raw ones, each with the current span's trace context
/// (feature `otel`) when it has none of its own.
/// The rows' columns, one array each, as the insert binds them.
pub(crate) struct Columns {
    pub(crate) ids: Vec<String>,
    pub(crate) names: Vec<String>,
    pub(crate) times: Vec<chrono::DateTime<chrono::Utc>>,
    pub(crate) details: Vec<String>,
}

impl Columns {
    pub(crate) fn of(events: &[RawEvent]) -> Columns {
        let mut columns = Columns {
            ids: Vec::with_capacity(events.len()),
            names: Vec::with_capacity(events.len()),
            times: Vec::with_capacity(events.len()),
            details: Vec::with_capacity(events.len()),
        };
        for raw in events {
            columns.ids.push(raw.id.as_str().to_owned());
            columns.names.push(raw.name.clone());
            columns.times.push(raw.occurred_on);
            columns.details.push(wire::encode_detail(raw));
        }
        columns
    }
}

pub(crate) fn encode(events: &[AnyEvent]) -> Result<Vec<RawEvent>, OutboxError> {
    let trace = current_trace();
    let mut raws = Vec::with_capacity(events.len());
    for event in events {
        let mut raw = event.to_raw()?;
        if raw.trace.is_none() {
            raw.trace.clone_from(&trace);
        }
        raws.push(raw);
    }
    Ok(raws)
}

/// The OpenTelemetry context of the span the write is called in.
#[cfg(feature = "otel")]
fn current_trace() -> Option<events_core::trace::TraceContext> {
    let span = tracing::Span::current();
    if span.is_disabled() {
        return None;
    }
    events_core::trace::from_span(&span)
}

/// Without the `otel` feature no context is taken.
#[cfg(not(feature = "otel"))]
#[inline(always)]
fn current_trace() -> Option<events_core::trace::TraceContext> {
    None
}
