//! The relay's queries stay on their indexes as the table grows.

use crate::support;

/// On a table of 1,000,000 rows (999,000 published, 900 waiting over 300
/// aggregates, 100 dead), the claim walks `messages_pending` in `seq` order
/// and probes `messages_pending_aggregate`, and scans no table; the stats
/// count through their partial indexes, and so does the retention's delete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_claim_uses_its_indexes_on_a_million_rows() {
    let (_db, pool) = support::database(4).await;
    sqlx::query(
        "INSERT INTO events_outbox.messages
             (id, name, occurred_on, aggregate_key, detail, published_at, dead_at)
         SELECT 'e-' || g, 'testclean.outbox.1.event.tick.counted', now(),
                'agg-' || (g % 300), '{}',
                CASE WHEN g <= 999000 THEN now() END,
                CASE WHEN g > 999900 THEN now() END
         FROM generate_series(1, 1000000) AS g",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("VACUUM ANALYZE events_outbox.messages")
        .execute(&pool)
        .await
        .unwrap();

    let plan = events_outbox::explain_claim(&pool, 100).await.unwrap();
    assert!(
        plan.contains("using messages_pending on messages"),
        "{plan}"
    );
    assert!(plan.contains("messages_pending_aggregate"), "{plan}");
    assert!(!plan.contains("Seq Scan"), "{plan}");

    for (predicate, index) in [
        (
            "published_at IS NULL AND dead_at IS NULL AND available_at IS NOT NULL",
            "messages_pending",
        ),
        ("dead_at IS NOT NULL", "messages_dead"),
        ("published_at IS NOT NULL", "messages_published"),
    ] {
        let sql = format!("EXPLAIN SELECT count(*) FROM events_outbox.messages WHERE {predicate}");
        let lines: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_all(&pool)
            .await
            .unwrap();
        let plan = lines.join("\n");
        assert!(
            plan.contains(index) && !plan.contains("Seq Scan"),
            "{predicate}:\n{plan}"
        );
    }

    // The retention's delete also walks its index.
    let lines: Vec<String> = sqlx::query_scalar(
        "EXPLAIN SELECT seq FROM events_outbox.messages
         WHERE published_at < now() - interval '1 hour' ORDER BY published_at LIMIT 10000",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let plan = lines.join("\n");
    assert!(
        plan.contains("messages_published") && !plan.contains("Seq Scan"),
        "{plan}"
    );

    let stats = events_outbox::stats(&pool).await.unwrap();
    assert_eq!(
        (stats.pending, stats.dead_letters, stats.published),
        (900, 100, 999_000)
    );
}

/// A backlog written before any analyze: the relay gives the planner the
/// table's statistics when it starts (without them the claim's probe for an
/// earlier row of the aggregate walks `messages_pending` from its start),
/// and the claim's plan then probes `messages_pending_aggregate`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_analyzes_a_table_with_no_statistics() {
    let (_db, pool) = support::database(4).await;
    sqlx::query(
        "INSERT INTO events_outbox.messages (id, name, occurred_on, aggregate_key, detail)
         SELECT 'e-' || g, 'testclean.outbox.1.event.tick.counted', now(), 'agg-' || g, '{}'
         FROM generate_series(1, 5000) AS g",
    )
    .execute(&pool)
    .await
    .unwrap();
    let statistics = || {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, bool>(
                "SELECT EXISTS (SELECT 1 FROM pg_stats WHERE schemaname = 'events_outbox'
                     AND tablename = 'messages' AND attname = 'published_at')",
            )
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    assert!(!statistics().await, "no statistics before the relay");
    // A bus that refuses nothing and dispatches nowhere: the rows may leave,
    // what matters is the analyze.
    let bus = events_core::EventBus::builder()
        .without_store()
        .discover(false)
        .build()
        .unwrap();
    let relay = events_outbox::Relay::spawn(pool.clone(), bus, support::quick());
    support::until("the outbox table analyzed", statistics).await;
    relay.stop().await.unwrap();
    let plan = events_outbox::explain_claim(&pool, 250).await.unwrap();
    assert!(plan.contains("messages_pending_aggregate"), "{plan}");
}

/// Statistics taken while every row was published (an outbox's usual
/// state), then a backlog (an outage): the planner takes the waiting rows
/// for rare, yet the claim's probe for an earlier row of the aggregate
/// still uses `messages_pending_aggregate` and does not walk
/// `messages_pending` (schema version 2; with version 1's index it did, one
/// walk over every earlier waiting row per claimed row).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_statistics_do_not_turn_the_probe_into_a_walk() {
    let (_db, pool) = support::database(4).await;
    sqlx::raw_sql(
        "ALTER TABLE events_outbox.messages SET (autovacuum_enabled = false);
         INSERT INTO events_outbox.messages
             (id, name, occurred_on, aggregate_key, detail, published_at)
         SELECT 'old-' || g, 'testclean.outbox.1.event.tick.counted', now(), 'old-' || g, '{}', now()
         FROM generate_series(1, 20000) AS g;
         ANALYZE events_outbox.messages;
         INSERT INTO events_outbox.messages (id, name, occurred_on, aggregate_key, detail)
         SELECT 'new-' || g, 'testclean.outbox.1.event.tick.counted', now(), 'new-' || g, '{}'
         FROM generate_series(1, 20000) AS g;",
    )
    .execute(&pool)
    .await
    .unwrap();
    let plan = events_outbox::explain_claim(&pool, 250).await.unwrap();
    assert!(
        plan.contains("using messages_pending on messages m"),
        "{plan}"
    );
    assert!(
        plan.contains("using messages_pending_aggregate on messages e"),
        "{plan}"
    );
    assert!(
        !plan.contains("using messages_pending on messages e"),
        "{plan}"
    );
}
