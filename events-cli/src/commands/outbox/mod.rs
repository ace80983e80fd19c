//! `events outbox ...`: the PostgreSQL outbox (`events-outbox`) of `DATABASE_URL`: migrate, stats, waiting rows, dead letters, requeue.

use std::time::Duration;

use events_outbox::OutboxError;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

use super::{Context, Fallible};

mod dead_letters;
mod list;
mod migrate;
mod render;
mod requeue;
mod stats;

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

async fn connect(url: &str) -> Fallible<PgPool> {
    PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .connect(url)
        .await
        .map_err(|e| {
            format!(
                "cannot connect to the outbox database ({}): {e}",
                redact(url)
            )
            .into()
        })
}

/// `url` without its password.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
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
    }
}
