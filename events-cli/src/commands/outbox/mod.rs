//! `events outbox ...`: the PostgreSQL outbox (`events-outbox`) of `DATABASE_URL`: migrate, stats, waiting rows, dead letters, requeue.

use std::str::FromStr;
use std::time::Duration;

use events_outbox::OutboxError;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};

use super::{Context, Fallible};

mod dead_letters;
mod list;
mod migrate;
mod render;
mod requeue;
mod stats;

/// How long a connection may take before the command gives up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// `events outbox [--database-url URL] COMMAND`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// The database (default: DATABASE_URL); before or after the command.
    #[arg(long, value_name = "URL", global = true)]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

/// The outbox's commands.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum Command {
    /// Creates or upgrades the outbox's tables (idempotent).
    Migrate(migrate::Args),
    /// Counts of waiting rows, dead letters and kept published rows, and the
    /// outbox lag (the age of the oldest waiting row).
    Stats(stats::Args),
    /// The oldest waiting rows, in the relay's order.
    List(list::Args),
    /// The oldest dead letters, with their errors.
    DeadLetters(dead_letters::Args),
    /// Puts a dead letter back in the queue, after the rows waiting now.
    Requeue(requeue::Args),
}

/// Runs an outbox command against `--database-url`, else `DATABASE_URL`.
pub(crate) async fn run(args: Args, ctx: &mut Context<'_>) -> Fallible<u8> {
    let url =
        match args.database_url {
            Some(url) => url,
            None => match (ctx.env)("DATABASE_URL") {
                Some(url) if !url.is_empty() => url,
                _ => return Err(
                    "DATABASE_URL is not set: the outbox commands need the PostgreSQL database \
                     (set it, or pass --database-url)"
                        .into(),
                ),
            },
        };
    let pool = connect(&url).await?;
    let result = match args.command {
        Command::Migrate(args) => migrate::run(args, &pool, ctx).await,
        Command::Stats(args) => stats::run(args, &pool, ctx).await,
        Command::List(args) => list::run(args, &pool, ctx).await,
        Command::DeadLetters(args) => dead_letters::run(args, &pool, ctx).await,
        Command::Requeue(args) => requeue::run(args, &pool, ctx).await,
    };
    pool.close().await;
    result
}

/// Connects once on its own first, so that a refused connection, an unknown
/// host or a wrong password is reported as such at once (a pool would retry
/// until its timeout and report only that it timed out), then opens the
/// command's pool.
async fn connect(url: &str) -> Fallible<PgPool> {
    let cannot = |e: &dyn std::fmt::Display| -> Box<dyn std::error::Error + Send + Sync> {
        format!(
            "cannot connect to the outbox database ({}): {e}",
            redact(url)
        )
        .into()
    };
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(cannot(
            &"not a PostgreSQL URL (postgres://user@host:port/database)",
        ));
    }
    // Shown as the outbox shows database errors (OutboxError's Display:
    // PostgreSQL's message without sqlx's line of PostgreSQL's C source).
    let cannot_sqlx = |e: sqlx::Error| cannot(&OutboxError::from(e));
    let options = PgConnectOptions::from_str(url).map_err(cannot_sqlx)?;
    let probe = tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options))
        .await
        .map_err(|_| {
            cannot(&format_args!(
                "no answer in {} s",
                CONNECT_TIMEOUT.as_secs()
            ))
        })?
        .map_err(cannot_sqlx)?;
    // The probe's only job was the error; a failed goodbye changes nothing.
    let _ = probe.close().await;
    PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(CONNECT_TIMEOUT)
        .connect_with(options)
        .await
        .map_err(cannot_sqlx)
}

/// `--max`'s parser: a count of rows, at least 1 (`--max 0` would print
/// "nothing waiting" over waiting rows).
fn at_least_one(value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(0) => Err("at least 1".to_owned()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// `url` without its password (in its user part, or a `password=` of its
/// query string).
fn redact(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let mut shown = match (base.find("://"), base.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &base[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &base[..scheme + 3], &base[at..]),
                None => base.to_owned(),
            }
        }
        _ => base.to_owned(),
    };
    if let Some(query) = query {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                _ => pair.to_owned(),
            })
            .collect();
        shown.push('?');
        shown.push_str(&pairs.join("&"));
    }
    shown
}

/// An outbox error, saying what to do when the tables are missing.
fn explain(error: OutboxError) -> Box<dyn std::error::Error + Send + Sync> {
    if let OutboxError::Database(sqlx::Error::Database(db)) = &error {
        // undefined_table, invalid_schema_name
        if matches!(db.code().as_deref(), Some("42P01" | "3F000")) {
            return "the outbox's tables are not in this database: run `events outbox migrate` \
                    (or events_outbox::migrate at start-up)"
                .into();
        }
    }
    Box::new(error)
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn the_password_never_shows() {
        assert_eq!(
            redact("postgres://app:s3cret@db:5432/app"),
            "postgres://app:***@db:5432/app"
        );
        assert_eq!(redact("postgres://app@db/app"), "postgres://app@db/app");
        assert_eq!(redact("postgres://db/app"), "postgres://db/app");
        assert_eq!(
            redact("postgres://app@db/app?sslmode=require&password=s3cret&x=1"),
            "postgres://app@db/app?sslmode=require&password=***&x=1"
        );
        assert_eq!(
            redact("postgres://app:s3cret@db/app?PASSWORD=s3cret"),
            "postgres://app:***@db/app?PASSWORD=***"
        );
    }
}
