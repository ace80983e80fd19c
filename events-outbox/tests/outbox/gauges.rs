//! The outbox's gauges as a recorder sees them: set by `record_gauges`, and
//! by a running relay.
//!
//! Each test records into its own `metrics-util` debugging recorder
//! (`metrics::with_local_recorder`, on a current-thread runtime so every
//! call, the relay's tasks' too, lands on the test's thread).

use std::future::Future;
use std::time::Duration;

use events_core::metrics as m;
use events_outbox::{Relay, RelayOptions};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

use crate::support::{self, tick, Sightings};

fn recorded<F: Future<Output = ()>>(work: impl FnOnce(Snapshotter) -> F) {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(work(snapshotter));
    });
}

/// The outbox's two gauges, `(pending, oldest age)`, read in one snapshot
/// (reading one resets what the recorder holds).
fn gauges(snapshotter: &Snapshotter) -> (Option<f64>, Option<f64>) {
    let snapshot = snapshotter.snapshot().into_vec();
    let gauge = |name: &str| {
        snapshot
            .iter()
            .find(|(key, _, _, _)| key.key().name() == name)
            .and_then(|(_, _, _, value)| match value {
                DebugValue::Gauge(g) => Some(g.into_inner()),
                _ => None,
            })
    };
    (
        gauge(m::OUTBOX_PENDING),
        gauge(m::OUTBOX_OLDEST_PENDING_AGE),
    )
}

#[test]
fn record_gauges_sets_the_waiting_rows_and_the_lag() {
    recorded(|snapshotter| async move {
        let (_db, pool) = support::database(2).await;
        support::commit(&pool, Some("acme"), vec![tick("acme", 0), tick("acme", 1)]).await;
        sqlx::query(
            "UPDATE events_outbox.messages SET recorded_at = now() - interval '10 minutes'
             WHERE seq = (SELECT min(seq) FROM events_outbox.messages)",
        )
        .execute(&pool)
        .await
        .unwrap();
        let stats = events_outbox::record_gauges(&pool).await.unwrap();
        assert_eq!(stats.pending, 2, "{stats:?}");
        let (pending, age) = gauges(&snapshotter);
        assert_eq!(pending, Some(2.0));
        let age = age.unwrap();
        assert!((600.0..700.0).contains(&age), "{age}");
    });
}

/// A running relay sets them every `gauges_interval`: here one row waits
/// (backing off for an hour, so it stays) and is ten minutes old.
#[test]
fn a_relay_keeps_the_gauges_current() {
    recorded(|snapshotter| async move {
        let (_db, pool) = support::database(4).await;
        support::commit(&pool, Some("acme"), vec![tick("acme", 0)]).await;
        sqlx::query(
            "UPDATE events_outbox.messages SET available_at = now() + interval '1 hour',
                 recorded_at = now() - interval '10 minutes'",
        )
        .execute(&pool)
        .await
        .unwrap();
        let relay = Relay::spawn(
            pool.clone(),
            Sightings::default().bus(0),
            RelayOptions {
                gauges_interval: Duration::from_millis(20),
                ..support::quick()
            },
        );
        support::until("the relay's gauges", || {
            let (pending, age) = gauges(&snapshotter);
            async move { pending == Some(1.0) && age.is_some_and(|a| (600.0..700.0).contains(&a)) }
        })
        .await;
        relay.stop().await.unwrap();
    });
}
