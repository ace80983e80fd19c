//! The example's start-up (`build_event_bus`, the seed's `lifespan`) turns
//! bad configuration into a clear error naming the variable and the accepted
//! values — never a panic or a silent default. The variables are passed in
//! as lookups ([`EventBus::builder_from_lookup`]); the process environment
//! is never changed.

use std::sync::{Arc, Mutex};

use events_core::{BusError, DomainEvent, Event, EventBus, Handler, HandlerResult};
use events_examples::startup::build_event_bus_from;

/// The variables a child process must not inherit from this one.
const VARS: [&str; 6] = [
    "EVENT_BUS_ENABLED",
    "EVENT_BUS_ASYNC",
    "EVENT_BUS_MODE",
    "EVENT_BUS_NAME",
    "EVENT_BUS_SOURCE",
    "EVENT_BUS_STORE_PATH",
];

/// An environment of exactly `pairs`, as a lookup.
fn with_env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let vars: std::collections::HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |var| vars.get(var).cloned()
}

#[tokio::test]
async fn bad_configuration_is_a_clear_start_up_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("events.db");
    let store = store.to_str().unwrap();

    let env = with_env(&[
        ("EVENT_BUS_STORE_PATH", store),
        ("EVENT_BUS_ENABLED", "maybe"),
    ]);
    let err = build_event_bus_from(env).await.unwrap_err();
    assert!(matches!(err, BusError::Config(_)), "{err}");
    assert_eq!(
        err.to_string(),
        "EVENT_BUS_ENABLED=`maybe` is not valid: expected `true` or `false` (also `1`/`0`, `yes`/`no`, `on`/`off`)"
    );

    let env = with_env(&[("EVENT_BUS_STORE_PATH", store), ("EVENT_BUS_MODE", "kafka")]);
    let err = build_event_bus_from(env).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "EVENT_BUS_MODE=`kafka` is not valid: expected `local` or `eventbridge`"
    );

    let env = with_env(&[
        ("EVENT_BUS_STORE_PATH", store),
        ("EVENT_BUS_ASYNC", "sometimes"),
    ]);
    assert!(build_event_bus_from(env)
        .await
        .unwrap_err()
        .to_string()
        .starts_with("EVENT_BUS_ASYNC=`sometimes`"));

    let env = with_env(&[
        ("EVENT_BUS_STORE_PATH", store),
        ("EVENT_BUS_SOURCE", "aws.events"),
    ]);
    assert!(build_event_bus_from(env)
        .await
        .unwrap_err()
        .to_string()
        .contains("`aws.`"));

    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let unwritable = file.join("events.db");
    let env = with_env(&[("EVENT_BUS_STORE_PATH", unwritable.to_str().unwrap())]);
    let err = build_event_bus_from(env).await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with("cannot open the event store at"),
        "{err}"
    );

    let env = with_env(&[
        ("EVENT_BUS_STORE_PATH", store),
        ("EVENT_BUS_MODE", "eventbridge"),
    ]);
    let err = build_event_bus_from(env).await.unwrap_err();
    assert!(matches!(err, BusError::NoPublisher { .. }), "{err}");

    // And the defaults work: local mode, the configured store, every handler.
    let env = with_env(&[("EVENT_BUS_STORE_PATH", store)]);
    let bus = build_event_bus_from(env).await.unwrap();
    assert_eq!(bus.config().mode, events_core::Mode::Local);
    assert!(
        std::path::Path::new(store).exists(),
        "the store is created on first use"
    );
}

#[derive(DomainEvent, Debug, Clone)]
#[event(
    company = "acme",
    service = "shop",
    version = 1,
    resource = "invoice",
    action = "sent"
)]
struct InvoiceSent {
    number: u32,
}

/// A handler with a dependency: what `register_handler` is for.
struct Mailer {
    sent: Arc<Mutex<Vec<u32>>>,
}

impl Handler<InvoiceSent> for Mailer {
    async fn handle(&self, event: &Event<InvoiceSent>) -> HandlerResult {
        self.sent.lock().unwrap().push(event.number);
        Ok(())
    }
}

#[tokio::test]
async fn a_builder_from_the_environment_keeps_every_variable_and_takes_handlers() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("from-env.db");
    let env = with_env(&[
        ("EVENT_BUS_STORE_PATH", store.to_str().unwrap()),
        ("EVENT_BUS_ASYNC", "true"),
        ("EVENT_BUS_SOURCE", "acme.billing"),
    ]);
    let sent = Arc::new(Mutex::new(Vec::new()));
    let bus = EventBus::builder_from_lookup(&env)
        .unwrap()
        .register_handler(Mailer { sent: sent.clone() })
        .connect()
        .await
        .unwrap();
    assert!(bus.config().async_handlers, "EVENT_BUS_ASYNC is kept");
    assert_eq!(
        bus.config().store_path,
        store,
        "EVENT_BUS_STORE_PATH is kept"
    );
    assert_eq!(bus.config().source.as_deref(), Some("acme.billing"));
    assert!(store.exists(), "the store is opened at the configured path");

    let outcome = bus.publish(InvoiceSent { number: 7 }).await.unwrap();
    assert_eq!(
        outcome.spawned(),
        1,
        "async mode spawns the registered handler"
    );
    bus.shutdown(std::time::Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(*sent.lock().unwrap(), [7]);

    // Code overrides the environment.
    let bus = EventBus::builder_from_lookup(&env)
        .unwrap()
        .async_handlers(false)
        .build()
        .unwrap();
    assert!(!bus.config().async_handlers);

    // A bad variable is the same clear error as from_env's.
    let err = EventBus::builder_from_lookup(with_env(&[("EVENT_BUS_ASYNC", "sometimes")]))
        .err()
        .unwrap();
    assert!(matches!(err, BusError::Config(_)), "{err}");
    assert!(
        err.to_string().starts_with("EVENT_BUS_ASYNC=`sometimes`"),
        "{err}"
    );

    // `builder()` is the in-code start: it reads no variable (it takes no
    // lookup), so it has the built-in defaults.
    let bus = EventBus::builder().in_memory_store().build().unwrap();
    assert!(!bus.config().async_handlers);
    assert_eq!(bus.config().mode, events_core::Mode::Local);
}

/// Runs the README's `main` (a real binary returning `Box<dyn Error>`) with
/// `vars` and returns what it wrote to stderr.
fn readme_main(vars: &[(&str, &str)]) -> (std::process::ExitStatus, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_readme_main"));
    for var in VARS {
        cmd.env_remove(var);
    }
    cmd.envs(vars.iter().copied());
    let out = cmd.output().unwrap();
    (out.status, String::from_utf8(out.stderr).unwrap())
}

#[test]
fn start_up_errors_print_as_sentences_under_box_dyn_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("events.db");

    let (status, stderr) = readme_main(&[
        ("EVENT_BUS_STORE_PATH", store.to_str().unwrap()),
        ("EVENT_BUS_MODE", "kafka"),
    ]);
    assert!(!status.success());
    assert_eq!(
        stderr.trim_end(),
        "Error: EVENT_BUS_MODE=`kafka` is not valid: expected `local` or `eventbridge`"
    );

    // The store under a plain file: the path and the OS's reason, no struct.
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let unopenable = file.join("events.db");
    let (status, stderr) = readme_main(&[("EVENT_BUS_STORE_PATH", unopenable.to_str().unwrap())]);
    assert!(!status.success());
    let expected_start = format!(
        "Error: cannot open the event store at `{}`",
        unopenable.display()
    );
    assert!(stderr.starts_with(&expected_start), "{stderr}");
    assert_eq!(
        stderr.matches("ot a directory").count(),
        1,
        "the OS's reason, once: {stderr}"
    );
    for debug_only in ["Open {", "Os {", "kind:", "ConfigError {", "Store("] {
        assert!(
            !stderr.contains(debug_only),
            "a Debug struct leaked: {stderr}"
        );
    }

    // And with good variables it runs.
    let (status, stderr) = readme_main(&[("EVENT_BUS_STORE_PATH", store.to_str().unwrap())]);
    assert!(status.success(), "{stderr}");
}

/// Item 17 of the trial: an error's message does not repeat its source, so
/// a chain printer (`anyhow`, `{:?}` here) says the OS reason once.
#[test]
fn the_store_open_error_says_its_cause_once_along_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let err = events_core::SqliteStore::open(file.join("events.db")).unwrap_err();
    let mut chain = vec![err.to_string()];
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        chain.push(cause.to_string());
        source = cause.source();
    }
    assert!(chain.len() >= 2, "the OS error is the source: {chain:?}");
    assert_eq!(
        chain.join("\n").matches("ot a directory").count(),
        1,
        "{chain:?}"
    );
    let debug = format!("{err:?}");
    assert!(
        debug.starts_with("cannot open the event store at")
            && debug.matches("ot a directory").count() == 1,
        "{debug}"
    );
}
