//! The outbox's error type.

/// What can go wrong in the outbox.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OutboxError {
    /// The database refused or failed a query (or could not be reached).
    /// Shown with PostgreSQL's message, its detail and hint (not as the
    /// error's `source`, so that a chain of causes shows it once).
    #[error("{}", Described(.0))]
    Database(sqlx::Error),
    /// An event could not be serialized for the outbox row.
    #[error("event not written to the outbox")]
    Encode(#[from] events_core::EncodeError),
    /// The outbox already holds an event with this id (ids are unique:
    /// recording one event twice would publish it twice).
    #[error("the outbox already holds an event with id `{id}`: an event is recorded once")]
    DuplicateEvent {
        /// The id of the event written twice.
        id: String,
    },
    /// A write on a connection with no transaction open (no sqlx
    /// `begin()`): it would be a transaction of its own, its events
    /// committed at once, without the aggregate's commit. Nothing was
    /// written. Write in the transaction that saves the aggregate (`&mut tx`
    /// of `pool.begin()` or `conn.begin()`; a `BEGIN` sent by hand is not
    /// seen by sqlx, and not taken for one).
    #[error(
        "outbox write outside a transaction: write the events in the transaction \
         that saves the aggregate (after BEGIN), so they commit with it"
    )]
    NotInTransaction,
    /// The statement written with the events
    /// ([`write_recorded_with`](crate::write_recorded_with) and its
    /// siblings) failed: most often the application's own part of it (a
    /// constraint of its table), the database's message says which; nothing
    /// of it and none of the events was written. The error is the one the
    /// statement would have given alone (match `sqlx::Error::Database` for
    /// its constraint).
    #[error("the statement and its events were not written: {}", Described(.0))]
    Statement(sqlx::Error),
    /// The statement handed to [`write_recorded_with`](crate::write_recorded_with)
    /// (or its siblings) uses placeholders up to `$used` but has `bound`
    /// values bound: nothing was sent. Alone, PostgreSQL would refuse it;
    /// with the outbox's parameters numbered after the statement's, a
    /// missing value would be read from the outbox's, so it is refused here.
    #[error(
        "the statement uses placeholders up to ${used} but {bound} value(s) are bound to it: \
         bind one value per placeholder (nothing was written)"
    )]
    Placeholders {
        /// The highest `$N` in the statement.
        used: usize,
        /// How many values were bound.
        bound: usize,
    },
    /// The outbox tables are at a newer schema version than this crate knows.
    #[error(
        "the outbox schema is at version {found}, newer than the {known} this events-outbox knows; \
         upgrade events-outbox"
    )]
    SchemaTooNew {
        /// The version in the database.
        found: i32,
        /// The newest version this crate ships.
        known: i32,
    },
    /// The relay's task ended abnormally (it panicked).
    #[error("the outbox relay task failed: {0}")]
    Task(String),
    /// Waiting for ctrl-c failed.
    #[error("cannot wait for ctrl-c")]
    Signal(#[source] std::io::Error),
}

impl From<sqlx::Error> for OutboxError {
    fn from(error: sqlx::Error) -> Self {
        OutboxError::Database(error)
    }
}

/// A sqlx error as the outbox shows it: for PostgreSQL's errors, sqlx's
/// words with PostgreSQL's message, detail and hint, without the ` at line N` sqlx 0.9 appends (a
/// line of PostgreSQL's own C source, not of the statement, which reads as
/// if it were); any other error as sqlx says it.
struct Described<'a>(&'a sqlx::Error);

impl std::fmt::Display for Described<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sqlx::Error::Database(db) = self.0 else {
            return self.0.fmt(f);
        };
        write!(f, "error returned from database: {}", db.message())?;
        if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
            if let Some(detail) = pg.detail() {
                write!(f, " ({detail})")?;
            }
            if let Some(hint) = pg.hint() {
                write!(f, " hint: {hint}")?;
            }
        }
        Ok(())
    }
}

impl OutboxError {
    /// A database error, or [`OutboxError::DuplicateEvent`] when it is the
    /// unique violation of the id index.
    /// As [`from_write`](Self::from_write), for the statement written with
    /// the events: other failures are [`OutboxError::Statement`].
    pub(crate) fn from_statement(error: sqlx::Error) -> Self {
        match OutboxError::from_write(error) {
            OutboxError::Database(error) => OutboxError::Statement(error),
            other => other,
        }
    }

    /// Whether PostgreSQL said the outbox's tables do not exist (SQLSTATE
    /// `42P01` on `events_outbox.*`): [`migrate`](crate::migrate) was not
    /// run on this database. A relay logs its failed rounds with that hint.
    #[must_use]
    pub fn is_missing_tables(&self) -> bool {
        let (OutboxError::Database(sqlx::Error::Database(db))
        | OutboxError::Statement(sqlx::Error::Database(db))) = self
        else {
            return false;
        };
        db.code().as_deref() == Some("42P01") && db.message().contains("events_outbox.")
    }

    pub(crate) fn from_write(error: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &error {
            if db.constraint() == Some("messages_id_unique") {
                let id = db
                    .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                    .and_then(|e| e.detail())
                    .and_then(|d| d.split_once("=(").map(|(_, rest)| rest))
                    .and_then(|rest| rest.split_once(')').map(|(id, _)| id.to_owned()))
                    .unwrap_or_default();
                return OutboxError::DuplicateEvent { id };
            }
        }
        OutboxError::Database(error)
    }
}
