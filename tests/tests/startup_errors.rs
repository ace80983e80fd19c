//! The example's start-up (`build_event_bus`, the seed's `lifespan`) turns
//! bad configuration into a clear error naming the variable and the accepted
//! values — never a panic or a silent default. (A test binary of its own: it
//! changes the process environment.)

use events_core::BusError;
use events_examples::startup::build_event_bus;

const VARS: [&str; 6] = [
    "EVENT_BUS_ENABLED",
    "EVENT_BUS_ASYNC",
    "EVENT_BUS_MODE",
    "EVENT_BUS_NAME",
    "EVENT_BUS_SOURCE",
    "EVENT_BUS_STORE_PATH",
];

fn with_env(pairs: &[(&str, &str)]) {
    for var in VARS {
        std::env::remove_var(var);
    }
    for (k, v) in pairs {
        std::env::set_var(k, v);
    }
}

#[tokio::test]
async fn bad_configuration_is_a_clear_start_up_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("events.db");
    let store = store.to_str().unwrap();

    with_env(&[
        ("EVENT_BUS_STORE_PATH", store),
        ("EVENT_BUS_ENABLED", "maybe"),
    ]);
    let err = build_event_bus().await.unwrap_err();
    assert!(matches!(err, BusError::Config(_)), "{err}");
    assert_eq!(
        err.to_string(),
        "EVENT_BUS_ENABLED=`maybe` is not valid: expected `true` or `false` (also `1`/`0`, `yes`/`no`, `on`/`off`)"
    );

    with_env(&[("EVENT_BUS_STORE_PATH", store), ("EVENT_BUS_MODE", "kafka")]);
    let err = build_event_bus().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "EVENT_BUS_MODE=`kafka` is not valid: expected `local` or `eventbridge`"
    );

    with_env(&[
        ("EVENT_BUS_STORE_PATH", store),
        ("EVENT_BUS_ASYNC", "sometimes"),
    ]);
    assert!(build_event_bus()
        .await
        .unwrap_err()
        .to_string()
        .starts_with("EVENT_BUS_ASYNC=`sometimes`"));

    with_env(&[
        ("EVENT_BUS_STORE_PATH", store),
        ("EVENT_BUS_SOURCE", "aws.events"),
    ]);
    assert!(build_event_bus()
        .await
        .unwrap_err()
        .to_string()
        .contains("`aws.`"));

    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let unwritable = file.join("events.db");
    with_env(&[("EVENT_BUS_STORE_PATH", unwritable.to_str().unwrap())]);
    let err = build_event_bus().await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with("cannot open the event store at"),
        "{err}"
    );

    with_env(&[
        ("EVENT_BUS_STORE_PATH", store),
        ("EVENT_BUS_MODE", "eventbridge"),
    ]);
    let err = build_event_bus().await.unwrap_err();
    assert!(matches!(err, BusError::NoPublisher { .. }), "{err}");

    // And the defaults work: local mode, the configured store, every handler.
    with_env(&[("EVENT_BUS_STORE_PATH", store)]);
    let bus = build_event_bus().await.unwrap();
    assert_eq!(bus.config().mode, events_core::Mode::Local);
    assert!(
        std::path::Path::new(store).exists(),
        "the store is created on first use"
    );
}
