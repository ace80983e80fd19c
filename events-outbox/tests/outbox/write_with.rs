//! Writing with the application's statement: its row and the events in one
//! statement, committed or rolled back together, failing together.

use events_core::Recorder;
use events_outbox::{OutboxError, Relay};
use sqlx::PgPool;

use crate::support::{self, tick, Sightings};

async fn companies(pool: &PgPool) {
    sqlx::query("CREATE TABLE companies (id text PRIMARY KEY, name text NOT NULL)")
        .execute(pool)
        .await
        .unwrap();
}

async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Rolled back: neither the company nor its event; committed: both, the
/// event published once with its identity; an `UPDATE` with its event the
/// same way, and the rows of one aggregate in record order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_statement_and_its_events_commit_or_roll_back_together() {
    let (_db, pool) = support::database(4).await;
    companies(&pool).await;
    let sightings = Sightings::default();
    let relay = Relay::spawn(pool.clone(), sightings.bus(0), support::quick());

    let mut events = Recorder::new();
    events.record_event(tick("acme", 0));
    let lost = events.events()[0].id().to_string();
    let mut tx = pool.begin().await.unwrap();
    let insert = sqlx::query("INSERT INTO companies (id, name) VALUES ($1, $2)")
        .bind("acme")
        .bind("Acme");
    let written = events_outbox::write_recorded_with(&mut tx, insert, "acme", &mut events)
        .await
        .unwrap();
    assert_eq!(written, 1);
    assert!(events.is_empty(), "the recorder is drained into the outbox");
    // Inside the transaction both rows are there.
    let seen: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM companies) + (SELECT count(*) FROM events_outbox.messages)",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    assert_eq!(seen, 2);
    tx.rollback().await.unwrap();
    assert_eq!(count(&pool, "SELECT count(*) FROM companies").await, 0);
    assert_eq!(
        count(&pool, "SELECT count(*) FROM events_outbox.messages").await,
        0
    );

    let created = tick("globex", 0);
    let renamed = tick("globex", 1);
    let mut tx = pool.begin().await.unwrap();
    let insert = sqlx::query("INSERT INTO companies (id, name) VALUES ($1, $2);")
        .bind("globex")
        .bind("Globex");
    events_outbox::write_with(&mut tx, insert, Some("globex"), [created.clone()])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    let update = sqlx::query("UPDATE companies SET name = $1 WHERE id = $2 RETURNING id")
        .bind("Globex Corp")
        .bind("globex");
    events_outbox::write_with(&mut tx, update, Some("globex"), [renamed.clone()])
        .await
        .unwrap();
    tx.commit().await.unwrap();

    support::until("both events", || {
        let s = sightings.clone();
        async move { s.count() >= 2 }
    })
    .await;
    support::until("both rows marked published", || {
        let pool = pool.clone();
        async move { events_outbox::stats(&pool).await.unwrap().published == 2 }
    })
    .await;
    relay.stop().await.unwrap();
    let seen = sightings.all();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0].event, created);
    assert_eq!(seen[0].event.occurred_on(), created.occurred_on());
    assert_eq!(seen[1].event, renamed);
    assert!(!sightings.ids().contains(&lost));
    let name: String = sqlx::query_scalar("SELECT name FROM companies WHERE id = 'globex'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(name, "Globex Corp");
}

/// The application's statement fails (its own constraint): nothing of it
/// and none of the events is written, the recorder keeps its events, and
/// the error is the database's, naming the constraint. An event already in
/// the outbox is `DuplicateEvent` as with `write_recorded`; a statement with
/// `WITH` queries of its own runs them beside the outbox's;
/// no events: the statement runs alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_statement_writes_nothing_and_says_why() {
    let (_db, pool) = support::database(4).await;
    companies(&pool).await;
    sqlx::query("INSERT INTO companies VALUES ('acme', 'Acme')")
        .execute(&pool)
        .await
        .unwrap();

    let mut events = Recorder::new();
    events.record_event(tick("acme", 0));
    let mut tx = pool.begin().await.unwrap();
    let insert = sqlx::query("INSERT INTO companies (id, name) VALUES ($1, $2)")
        .bind("acme")
        .bind("Acme again");
    match events_outbox::write_recorded_with(&mut tx, insert, "acme", &mut events).await {
        Err(error @ OutboxError::Statement(_)) => {
            let OutboxError::Statement(sqlx::Error::Database(db)) = &error else {
                panic!("expected a database error, got {error:?}");
            };
            assert_eq!(db.constraint(), Some("companies_pkey"), "{db}");
            assert_eq!(
                error.to_string(),
                "the statement and its events were not written: error returned from database: \
                 duplicate key value violates unique constraint \"companies_pkey\" (Key (id)=(acme) already exists.)"
            );
        }
        other => panic!("expected the companies_pkey violation, got {other:?}"),
    }
    assert_eq!(events.len(), 1, "the recorder keeps its events");
    tx.rollback().await.unwrap();
    assert_eq!(
        count(&pool, "SELECT count(*) FROM events_outbox.messages").await,
        0
    );

    // The same event twice: refused as a duplicate, the second company not kept.
    let event = tick("initech", 0);
    let mut tx = pool.begin().await.unwrap();
    let insert = sqlx::query("INSERT INTO companies VALUES ($1, $2)")
        .bind("initech")
        .bind("Initech");
    events_outbox::write_with(&mut tx, insert, Some("initech"), [event.clone()])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    let insert = sqlx::query("INSERT INTO companies VALUES ($1, $2)")
        .bind("initrode")
        .bind("Initrode");
    match events_outbox::write_with(&mut tx, insert, Some("initrode"), [event.clone()]).await {
        Err(OutboxError::DuplicateEvent { id }) => assert_eq!(id, event.id().to_string()),
        other => panic!("expected DuplicateEvent, got {other:?}"),
    }
    tx.rollback().await.unwrap();
    assert_eq!(count(&pool, "SELECT count(*) FROM companies").await, 2);

    // A statement with WITH queries of its own, one of them modifying:
    // they run beside the outbox's.
    let mut tx = pool.begin().await.unwrap();
    let moving = sqlx::query(
        "WITH d AS (DELETE FROM companies WHERE id = $1 RETURNING id)
         INSERT INTO companies SELECT id || '-2', 'Moved' FROM d",
    )
    .bind("acme");
    assert_eq!(
        events_outbox::write_with(&mut tx, moving, Some("acme"), [tick("acme", 1)])
            .await
            .unwrap(),
        1
    );
    tx.commit().await.unwrap();
    let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM companies ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(ids, ["acme-2", "initech"]);

    // No events: the statement alone.
    let mut tx = pool.begin().await.unwrap();
    let insert = sqlx::query("INSERT INTO companies VALUES ($1, $2)")
        .bind("umbrella")
        .bind("Umbrella");
    let none: [events_core::Event<support::Tick>; 0] = [];
    assert_eq!(
        events_outbox::write_with(&mut tx, insert, Some("umbrella"), none)
            .await
            .unwrap(),
        0
    );
    tx.commit().await.unwrap();
    assert_eq!(count(&pool, "SELECT count(*) FROM companies").await, 3);
    assert_eq!(
        count(&pool, "SELECT count(*) FROM events_outbox.messages").await,
        2
    );
}

/// A write on a connection with no transaction open would commit at once,
/// without the aggregate: refused, nothing written (neither the events nor,
/// with `write_with`, the statement); the same inside a transaction works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_outside_a_transaction_is_refused() {
    let (_db, pool) = support::database(4).await;
    companies(&pool).await;
    let mut conn = pool.acquire().await.unwrap();
    match events_outbox::write(&mut conn, Some("acme"), [tick("acme", 0)]).await {
        Err(OutboxError::NotInTransaction) => {}
        other => panic!("expected NotInTransaction, got {other:?}"),
    }
    let insert = sqlx::query("INSERT INTO companies VALUES ($1, $2)")
        .bind("acme")
        .bind("Acme");
    let mut events = Recorder::new();
    events.record_event(tick("acme", 1));
    match events_outbox::write_recorded_with(&mut conn, insert, "acme", &mut events).await {
        Err(OutboxError::NotInTransaction) => {}
        other => panic!("expected NotInTransaction, got {other:?}"),
    }
    assert_eq!(events.len(), 1, "the recorder keeps its events");
    let message = OutboxError::NotInTransaction.to_string();
    assert!(message.contains("outside a transaction"), "{message}");
    assert_eq!(count(&pool, "SELECT count(*) FROM companies").await, 0);
    assert_eq!(
        count(&pool, "SELECT count(*) FROM events_outbox.messages").await,
        0
    );

    // The connection itself is fine: in a transaction the same write works.
    let mut tx = sqlx::Connection::begin(&mut *conn).await.unwrap();
    events_outbox::write(&mut tx, Some("acme"), [tick("acme", 2)])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        count(&pool, "SELECT count(*) FROM events_outbox.messages").await,
        1
    );
}

/// A database that was never migrated: the write fails with PostgreSQL's
/// reason, and the error says what is missing (`is_missing_tables`, which
/// the relay's warning turns into "run events_outbox::migrate").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_without_the_outbox_tables_is_named_as_such() {
    let db = tokio::task::spawn_blocking(|| events_pg_tests::shared().database())
        .await
        .unwrap();
    let pool = support::pool(&db.url, 2).await;
    let mut tx = pool.begin().await.unwrap();
    let error = events_outbox::write(&mut tx, Some("acme"), [tick("acme", 0)])
        .await
        .unwrap_err();
    assert!(error.is_missing_tables(), "{error:?}");
    // PostgreSQL's message, in the error's own text (`{e}` says why), and
    // without the line of PostgreSQL's C source sqlx 0.9 appends.
    let message = error.to_string();
    assert_eq!(
        message,
        r#"error returned from database: relation "events_outbox.messages" does not exist"#
    );
    assert!(std::error::Error::source(&error).is_none());
    tx.rollback().await.unwrap();
    assert!(!OutboxError::NotInTransaction.is_missing_tables());
}

/// A statement with fewer values bound than its placeholders (or more) is
/// refused before anything is sent: the outbox's parameters, numbered after
/// the statement's, must never stand in for a missing value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_missing_a_bound_value_is_refused_not_filled_in() {
    let (_db, pool) = support::database(4).await;
    companies(&pool).await;
    let mut events = Recorder::new();
    events.record_event(tick("acme", 0));

    let mut tx = pool.begin().await.unwrap();
    let insert = sqlx::query("INSERT INTO companies (id, name) VALUES ($1, $2)").bind("acme");
    match events_outbox::write_recorded_with(&mut tx, insert, "acme", &mut events).await {
        Err(error @ OutboxError::Placeholders { used: 2, bound: 1 }) => {
            let message = error.to_string();
            assert!(message.contains("up to $2 but 1 value(s)"), "{message}");
        }
        other => panic!("expected Placeholders, got {other:?}"),
    }
    let insert = sqlx::query("INSERT INTO companies (id, name) VALUES ($1, '$3')")
        .bind("acme")
        .bind("Acme");
    match events_outbox::write_recorded_with(&mut tx, insert, "acme", &mut events).await {
        Err(OutboxError::Placeholders { used: 1, bound: 2 }) => {}
        other => panic!("expected Placeholders, got {other:?}"),
    }
    assert_eq!(events.len(), 1, "the recorder keeps its events");
    tx.commit().await.unwrap();
    assert_eq!(count(&pool, "SELECT count(*) FROM companies").await, 0);
    assert_eq!(
        count(&pool, "SELECT count(*) FROM events_outbox.messages").await,
        0
    );

    // Placeholders in strings and comments are not counted; a statement
    // opening with comments keeps its own WITH.
    let mut tx = pool.begin().await.unwrap();
    let insert = sqlx::query(
        "/* the sign-up */ -- $3 here is a comment
         WITH n AS (SELECT $2::text AS name)
         INSERT INTO companies (id, name) SELECT $1, name || ' ($9)' FROM n",
    )
    .bind("acme")
    .bind("Acme");
    let written = events_outbox::write_recorded_with(&mut tx, insert, "acme", &mut events)
        .await
        .unwrap();
    assert_eq!(written, 1);
    tx.commit().await.unwrap();
    let name: String = sqlx::query_scalar("SELECT name FROM companies WHERE id = 'acme'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(name, "Acme ($9)");
    assert_eq!(
        count(&pool, "SELECT count(*) FROM events_outbox.messages").await,
        1
    );
}
