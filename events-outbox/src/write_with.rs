//! Writing the aggregate's own statement and its events in one statement:
//! one round trip for "save and record".
//!
//! [`write_recorded`](crate::write_recorded) is a statement of its own after
//! the application's insert or update: one more round trip to the database
//! in every transaction that records events. [`write_recorded_with`] sends
//! the application's statement and the outbox's insert together, the
//! outbox's part as data-modifying `WITH` queries of the statement:
//!
//! ```sql
//! WITH events_outbox_locked AS MATERIALIZED (...),   -- the aggregate's advisory lock
//!      events_outbox_notified AS MATERIALIZED (...), -- the commit notification
//!      events_outbox_written AS (INSERT INTO events_outbox.messages ... unnest($3, ...))
//! INSERT INTO companies (id, name) VALUES ($1, $2)
//! ```
//!
//! PostgreSQL runs a data-modifying `WITH` query exactly once, to its end,
//! after the statement itself, and both see the same snapshot: the
//! application's rows and the events' rows are written by one statement, in
//! the caller's transaction, and commit together; a failure of the
//! statement (its own constraint) is reported before the outbox's insert
//! runs. The order and lock rules are those of [`write`](mod@crate::write).
//!
//! What the statement may be: one `INSERT`, `UPDATE` or `DELETE` (or a
//! `SELECT`), written with `$1`, `$2`, … placeholders and bound values as
//! any `sqlx::query`, with `WITH` queries of its own or not (the outbox's
//! come first, named `events_outbox_*`: do not use those names). Not
//! several statements. Its row count and `RETURNING` rows are not read: the
//! call returns how many events it wrote. A statement that fails fails the
//! whole statement: nothing of it, and none of the events, is written.
//!
//! The outbox's own parameters are numbered after the statement's, so the
//! statement must bind exactly one value per placeholder (its highest `$N`,
//! not counting strings, quoted names and comments): otherwise it is
//! refused with [`OutboxError::Placeholders`] before anything is sent,
//! where alone PostgreSQL would have refused it.

use events_core::{AnyEvent, RawEvent, Recorder};
use sqlx::postgres::{PgArguments, Postgres};
use sqlx::query::Query;
use sqlx::{Arguments, Execute, PgConnection};

use crate::error::OutboxError;
use crate::placeholders;
use crate::schema::{CHANNEL, LOCK_CLASS};
use crate::write::{encode, Columns};

/// Runs `statement` (the aggregate's insert or update) and writes everything
/// `recorder` holds into the outbox under `aggregate_key`, **in one
/// statement** (one round trip; see the [module docs](self)), in the
/// caller's transaction; then empties the recorder. Returns how many events
/// were written.
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
/// let insert = sqlx::query("INSERT INTO companies (id, name) VALUES ($1, $2)")
///     .bind("c-1")
///     .bind("Acme");
/// events_outbox::write_recorded_with(&mut tx, insert, "c-1", &mut events).await?;
/// tx.commit().await?; // the company and its event, or neither
/// # Ok(()) }
/// ```
///
/// # Errors
///
/// [`OutboxError::Encode`] when an event's attributes cannot be serialized,
/// [`OutboxError::DuplicateEvent`] when an event with one of these ids is
/// already in the outbox, [`OutboxError::Placeholders`] when the statement's highest `$N` is not
/// the number of values bound to it (nothing is sent), [`OutboxError::Statement`] when the statement
/// fails (the application's part: a constraint of its table; or the
/// outbox's: its tables missing), or is not one the module docs allow, with
/// PostgreSQL's message, and [`OutboxError::Database`] when one of the
/// statement's bound values cannot be encoded (`sqlx::Error::Encode`). On error the
/// recorder keeps its events and nothing of the statement was written.
pub async fn write_recorded_with<'q>(
    conn: &mut PgConnection,
    statement: Query<'q, Postgres, PgArguments>,
    aggregate_key: &str,
    recorder: &mut Recorder,
) -> Result<usize, OutboxError> {
    let raws = encode(recorder.events())?;
    let written = write_raw_with(conn, statement, Some(aggregate_key), &raws).await?;
    recorder.clear();
    Ok(written)
}

/// Runs `statement` and writes `events` (bare events or `Event<E>`s) into
/// the outbox under `aggregate_key` (`None`: no order to keep), in one
/// statement, in the caller's transaction: [`write()`](crate::write()) with
/// the aggregate's own statement in the same round trip.
///
/// # Errors
///
/// As [`write_recorded_with`].
pub async fn write_with<'q, I>(
    conn: &mut PgConnection,
    statement: Query<'q, Postgres, PgArguments>,
    aggregate_key: Option<&str>,
    events: I,
) -> Result<usize, OutboxError>
where
    I: IntoIterator,
    I::Item: Into<AnyEvent>,
{
    let events: Vec<AnyEvent> = events.into_iter().map(Into::into).collect();
    let raws = encode(&events)?;
    write_raw_with(conn, statement, aggregate_key, &raws).await
}

/// Runs `statement` and writes `events` as they are (their own trace
/// context included), in one statement: [`write_raw`](crate::write_raw)
/// with the aggregate's own statement.
///
/// # Errors
///
/// As [`write_recorded_with`], but for the encoding of events.
pub async fn write_raw_with<'q>(
    conn: &mut PgConnection,
    mut statement: Query<'q, Postgres, PgArguments>,
    aggregate_key: Option<&str>,
    events: &[RawEvent],
) -> Result<usize, OutboxError> {
    if !sqlx::Connection::is_in_transaction(conn) {
        return Err(OutboxError::NotInTransaction);
    }
    let mut arguments = statement
        .take_arguments()
        .map_err(|e| OutboxError::Database(sqlx::Error::Encode(e)))?
        .unwrap_or_default();
    let sql = statement.sql();
    if events.is_empty() {
        sqlx::query_with(sqlx::AssertSqlSafe(sql.as_str().to_owned()), arguments)
            .execute(conn)
            .await
            .map_err(OutboxError::Statement)?;
        return Ok(0);
    }
    // The outbox's parameters follow the statement's values: a statement
    // using more placeholders than it binds would read them as its own.
    let used = placeholders::highest(sql.as_str());
    if used != arguments.len() {
        return Err(OutboxError::Placeholders {
            used,
            bound: arguments.len(),
        });
    }
    let first = arguments.len() + 1;
    let columns = Columns::of(events);
    let added = (|| {
        arguments.add(LOCK_CLASS)?;
        arguments.add(aggregate_key)?;
        arguments.add(CHANNEL)?;
        arguments.add(columns.ids)?;
        arguments.add(columns.names)?;
        arguments.add(columns.times)?;
        arguments.add(columns.details)
    })();
    added.map_err(|e| OutboxError::Database(sqlx::Error::Encode(e)))?;
    let combined = combined(sql.as_str(), first);
    sqlx::query_with(sqlx::AssertSqlSafe(combined), arguments)
        .execute(conn)
        .await
        .map_err(OutboxError::from_statement)?;
    // The statement's row count is the application's; the outbox's insert
    // wrote every event or failed the statement.
    tracing::debug!(
        count = events.len(),
        aggregate = aggregate_key,
        "events written to the outbox with the application's statement"
    );
    Ok(events.len())
}

/// `statement` with the outbox's lock, notification and insert as `WITH`
/// queries of its own (before the statement's own, if it has any), the
/// outbox's parameters numbered from `first`.
fn combined(statement: &str, first: usize) -> String {
    let statement = statement.trim().trim_end_matches(';').trim_end();
    let p = |i: usize| format!("${}", first + i);
    let (class, key, channel) = (p(0), p(1), p(2));
    let (ids, names, times, details) = (p(3), p(4), p(5), p(6));
    let ours = format!(
        "events_outbox_locked AS MATERIALIZED (
    SELECT count(*) FROM (
        SELECT pg_advisory_xact_lock({class}, hashtext({key}::text)) WHERE {key}::text IS NOT NULL
    ) AS l
),
events_outbox_notified AS MATERIALIZED (
    SELECT count(*) FROM (SELECT pg_notify({channel}, '')) AS n
),
events_outbox_written AS (
    INSERT INTO events_outbox.messages (id, name, occurred_on, aggregate_key, detail)
    SELECT e.id, e.name, e.occurred_on, {key}::text, e.detail
    FROM events_outbox_locked, events_outbox_notified,
         unnest({ids}::text[], {names}::text[], {times}::timestamptz[], {details}::text[])
             WITH ORDINALITY AS e(id, name, occurred_on, detail, ord)
    ORDER BY e.ord
)"
    );
    // The statement's own WITH may follow comments: they stay in front.
    let (comments, body) = statement.split_at(placeholders::after_leading_comments(statement));
    match keyword(body, "WITH") {
        Some(rest) => match keyword(rest, "RECURSIVE") {
            Some(rest) => format!("{comments}WITH RECURSIVE {ours},\n{rest}"),
            None => format!("{comments}WITH {ours},\n{rest}"),
        },
        None => format!("WITH {ours}\n{statement}"),
    }
}

/// What follows `word` (any case, then whitespace) at the start of `sql`.
fn keyword<'s>(sql: &'s str, word: &str) -> Option<&'s str> {
    let head = sql.get(..word.len())?;
    let rest = &sql[word.len()..];
    (head.eq_ignore_ascii_case(word) && rest.starts_with(char::is_whitespace))
        .then(|| rest.trim_start())
}

#[cfg(test)]
mod tests {
    use super::combined;

    #[test]
    fn the_outbox_parameters_follow_the_statements() {
        let sql = combined("INSERT INTO t (a, b) VALUES ($1, $2);  ", 3);
        assert!(sql.starts_with("WITH events_outbox_locked AS MATERIALIZED ("));
        assert!(sql.ends_with(")\nINSERT INTO t (a, b) VALUES ($1, $2)"));
        assert!(sql.contains("pg_advisory_xact_lock($3, hashtext($4::text))"));
        assert!(sql.contains("pg_notify($5, '')"));
        assert!(sql.contains("unnest($6::text[], $7::text[], $8::timestamptz[], $9::text[])"));
        assert!(!sql.contains("$10"));
    }

    #[test]
    fn a_statement_with_its_own_with_queries_keeps_them_after_the_outboxs() {
        let sql = combined("with n AS (SELECT 1) INSERT INTO t SELECT * FROM n", 1);
        assert!(sql.starts_with("WITH events_outbox_locked"), "{sql}");
        assert!(
            sql.ends_with("),\nn AS (SELECT 1) INSERT INTO t SELECT * FROM n"),
            "{sql}"
        );
        let sql = combined("WITH\tRECURSIVE r AS (SELECT 1) DELETE FROM t", 1);
        assert!(
            sql.starts_with("WITH RECURSIVE events_outbox_locked"),
            "{sql}"
        );
        assert!(sql.ends_with("),\nr AS (SELECT 1) DELETE FROM t"), "{sql}");
        let sql = combined(
            "/* the upsert */ -- of t\nWITH n AS (SELECT 1) DELETE FROM t",
            1,
        );
        assert!(
            sql.starts_with("/* the upsert */ -- of t\nWITH events_outbox_locked"),
            "{sql}"
        );
        assert!(sql.ends_with("),\nn AS (SELECT 1) DELETE FROM t"), "{sql}");
        // A name that only starts like the keyword is no keyword.
        let sql = combined("WITHDRAW_ALL()", 1);
        assert!(sql.ends_with(")\nWITHDRAW_ALL()"), "{sql}");
    }
}
