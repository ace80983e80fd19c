//! The PostgreSQL company repository: the `companies` table, saved with its events in one transaction (the outbox).

use sqlx::postgres::{PgArguments, PgPoolOptions, Postgres};
use sqlx::query::Query;
use sqlx::{Connection, PgConnection, PgPool, Row};
use uuid::Uuid;

use crate::application::{RepositoryError, TransactionalCompanyRepository};
use crate::domain::aggregates::CompanyAggregate;

/// The example's migration: the `companies` table (idempotent).
pub const MIGRATION: &str = include_str!("../../migrations/0001_companies.sql");

/// Advisory-lock key of the example's migration, so several instances
/// starting at once take turns (`cmpn` in ASCII).
const MIGRATION_LOCK: i64 = 0x636d_706e;

impl From<sqlx::Error> for RepositoryError {
    fn from(error: sqlx::Error) -> Self {
        RepositoryError(format!("database: {error}"))
    }
}

impl From<events_outbox::OutboxError> for RepositoryError {
    fn from(error: events_outbox::OutboxError) -> Self {
        RepositoryError(error.to_string())
    }
}

/// Companies in a PostgreSQL table (`companies`), each saved in the same
/// transaction as the events it recorded, which go into the outbox
/// (`events-outbox`): the company and its events commit together or not at
/// all, and the outbox relay publishes them after the commit.
#[derive(Debug, Clone)]
pub struct PostgresCompanyRepository {
    pool: PgPool,
}

impl PostgresCompanyRepository {
    /// A repository on `pool`.
    pub fn new(pool: PgPool) -> Self {
        PostgresCompanyRepository { pool }
    }

    /// Connects to `database_url` (e.g. `DATABASE_URL`).
    ///
    /// # Errors
    ///
    /// When the URL is not valid or the database cannot be reached.
    pub async fn connect(database_url: &str) -> Result<Self, RepositoryError> {
        // OutboxError's Display: PostgreSQL's message, without the line of
        // PostgreSQL's own C source that sqlx appends to it.
        let cannot = |e: sqlx::Error| {
            let e = events_outbox::OutboxError::from(e);
            RepositoryError(format!("cannot connect to DATABASE_URL: {e}"))
        };
        // One connection first: a pool retries a refused connection or a
        // wrong password until its timeout, then says only that it timed
        // out; a single connection says why, at once.
        let probe = PgConnection::connect(database_url).await.map_err(cannot)?;
        let _ = probe.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .connect(database_url)
            .await
            .map_err(cannot)?;
        Ok(PostgresCompanyRepository { pool })
    }

    /// The pool (the relay and the tools use the same database).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Runs the migrations: the outbox's (`events_outbox::migrate`) and the
    /// example's `companies` table ([`MIGRATION`]). Idempotent; safe to run
    /// from several instances at once.
    ///
    /// # Errors
    ///
    /// When the database refuses a statement (nothing is half applied).
    pub async fn migrate(&self) -> Result<(), RepositoryError> {
        events_outbox::migrate(&self.pool).await?;
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *tx)
            .await?;
        // `IF NOT EXISTS` NOTICEs ("already exists, skipping"), which sqlx
        // logs at info, would say so at every start: not for this
        // transaction.
        sqlx::query("SET LOCAL client_min_messages = warning")
            .execute(&mut *tx)
            .await?;
        sqlx::raw_sql(MIGRATION).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Saves the company and writes the events it recorded into the outbox,
    /// in one transaction, under the company's id (its events leave in the
    /// order recorded). The aggregate's recorder is emptied only when the
    /// transaction committed: the events cannot also be published directly.
    /// Returns how many events were recorded.
    ///
    /// # Errors
    ///
    /// When the database fails or refuses (a company with this id exists):
    /// nothing was saved and the aggregate keeps its events.
    pub async fn save(&self, company: &mut CompanyAggregate) -> Result<usize, RepositoryError> {
        let mut tx = self.pool.begin().await?;
        // Written from a copy: the aggregate's recorder is drained only once
        // the commit succeeded. The company's insert and its events go in
        // one statement (one round trip): `write_recorded_with`.
        let mut events = company.events().clone();
        let written = events_outbox::write_recorded_with(
            &mut tx,
            Self::insert_statement(company),
            &company.id.to_string(),
            &mut events,
        )
        .await?;
        tx.commit().await?;
        company.events_mut().clear();
        Ok(written)
    }

    /// Inserts the company's row in the caller's transaction (`&mut tx`),
    /// beside whatever else it writes; its events are for the caller to
    /// write with `events_outbox::write_recorded` in the same transaction.
    ///
    /// # Errors
    ///
    /// When the insert fails (a company with this id exists).
    pub async fn insert(
        conn: &mut PgConnection,
        company: &CompanyAggregate,
    ) -> Result<(), RepositoryError> {
        Self::insert_statement(company).execute(conn).await?;
        Ok(())
    }

    /// The company's insert, bound, not yet run: [`insert`](Self::insert)
    /// runs it alone, [`save`](Self::save) with its events.
    pub fn insert_statement(company: &CompanyAggregate) -> Query<'_, Postgres, PgArguments> {
        sqlx::query("INSERT INTO companies (id, name, country_id) VALUES ($1, $2, $3)")
            .bind(company.id)
            .bind(&company.name)
            .bind(company.country_id)
    }

    /// Finds one by id (with no events recorded).
    ///
    /// # Errors
    ///
    /// When the database fails.
    pub async fn find(&self, id: Uuid) -> Result<Option<CompanyAggregate>, RepositoryError> {
        let row = sqlx::query("SELECT id, name, country_id FROM companies WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| {
            Ok(CompanyAggregate::restore(
                row.try_get("id")?,
                row.try_get("name")?,
                row.try_get("country_id")?,
            ))
        })
        .transpose()
        .map_err(|e: sqlx::Error| e.into())
    }
}

impl TransactionalCompanyRepository for PostgresCompanyRepository {
    fn save_with_events<'a>(
        &'a self,
        company: &'a mut CompanyAggregate,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<usize, RepositoryError>> + Send + 'a>,
    > {
        Box::pin(self.save(company))
    }
}
