//! Several relays on one database: no event handed over by two at once, and
//! per aggregate the order of recording.

use std::collections::HashMap;

use events_outbox::{Relay, RelayOptions};

use crate::support::{self, tick, Sightings};

const AGGREGATES: u32 = 200;
const PER_AGGREGATE: u32 = 10;
const WRITERS: u32 = 8;

/// Done-when 3: four relays (two workers each, own pools, own buses), 2,000
/// events over 200 aggregates committed by eight concurrent writers, half
/// before the relays start and half while they run. Every event is handed over exactly once, never by two at
/// once, and each aggregate's events reach the bus in the order recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_relays_share_the_work_in_order_per_aggregate() {
    let (db, pool) = support::database(12).await;
    let sightings = Sightings::default();
    // Each writer records its aggregates one after the other, each event in
    // its own transaction, so the rows of an aggregate sit close together
    // in `seq`, in the batches of different relays, the case where claiming
    // rows rather than heads would break the order.
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let pool = pool.clone();
            tokio::spawn(async move {
                for a in (w..AGGREGATES).step_by(WRITERS as usize) {
                    let key = format!("agg-{a}");
                    for n in 0..PER_AGGREGATE {
                        support::commit(&pool, Some(&key), vec![tick(&key, n)]).await;
                    }
                }
            })
        })
        .collect();
    // Half of the events wait when the relays start (a backlog they share);
    // the other half is committed while they run.
    let total = (AGGREGATES * PER_AGGREGATE) as usize;
    support::until("a backlog of half the events", || {
        let pool = pool.clone();
        async move { events_outbox::stats(&pool).await.unwrap().pending >= total as u64 / 2 }
    })
    .await;
    let mut relays = Vec::new();
    for relay in 0..4 {
        let relay_pool = support::pool(&db.url, 4).await;
        let options = RelayOptions {
            batch: 16,
            workers: 2,
            ..support::quick()
        };
        relays.push(Relay::spawn(relay_pool, sightings.bus(relay), options));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    support::until("every event handed over", || {
        let s = sightings.clone();
        async move { s.count() >= total }
    })
    .await;
    support::until("every row marked", || {
        let pool = pool.clone();
        async move { events_outbox::stats(&pool).await.unwrap().pending == 0 }
    })
    .await;
    for relay in relays {
        relay.stop().await.unwrap();
    }

    assert_eq!(
        sightings.overlaps(),
        0,
        "an event was handed over by two relays at once"
    );
    let seen = sightings.all();
    assert_eq!(seen.len(), total, "every event exactly once");
    let mut ids: Vec<String> = sightings.ids();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), total, "no event twice");
    let by_aggregate = sightings.by_aggregate();
    assert_eq!(by_aggregate.len(), AGGREGATES as usize);
    let expected: Vec<u32> = (0..PER_AGGREGATE).collect();
    for (aggregate, order) in &by_aggregate {
        assert_eq!(order, &expected, "aggregate {aggregate} out of order");
    }
    let mut per_relay: HashMap<usize, usize> = HashMap::new();
    for s in &seen {
        *per_relay.entry(s.relay).or_default() += 1;
    }
    assert!(
        per_relay.len() >= 2,
        "the relays shared the work: {per_relay:?}"
    );
    let stats = events_outbox::stats(&pool).await.unwrap();
    assert_eq!((stats.pending, stats.dead_letters), (0, 0));
    assert_eq!(stats.published, total as u64);
}
