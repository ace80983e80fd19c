//! `scope_event_bus` on multi-thread runtimes: the scope follows the tasks a
//! test spawns onto other workers, and code that is in no scope (or in
//! several tests' at once) panics instead of getting the real bus built from
//! the environment. Each test runs in a child process of this binary given
//! an `EVENT_BUS_STORE_PATH` in a temporary folder (no `set_var`), to see
//! whether anything built the environment's bus.

use std::any::Any;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, OnceLock};
use std::thread::ThreadId;

use events_core::testing::{scope_event_bus, RecordingBus};
use events_core::{get_event_bus, handler, reset_event_bus, set_event_bus, DomainEvent};

#[derive(DomainEvent, Debug, Clone, PartialEq)]
#[event(
    company = "kit",
    service = "scoperuntime",
    version = 1,
    resource = "parcel",
    action = "shipped"
)]
struct ParcelShipped {
    task: u32,
}

/// Runs only if something dispatches in process: a bus built from the
/// environment (local mode) would.
static REAL_HANDLER_RUNS: AtomicUsize = AtomicUsize::new(0);

#[handler]
async fn send_shipping_mail(_event: &ParcelShipped) {
    REAL_HANDLER_RUNS.fetch_add(1, Ordering::SeqCst);
}

/// The environment a developer's shell may have: a bus built from it would
/// create this store (and run `send_shipping_mail`). `true` in the child
/// process that runs `test`; in the test binary cargo started, `test` runs
/// in such a child, given the store's path, and the answer is `false`.
fn in_child_with_a_store(test: &str) -> bool {
    if events_tests::child::phase(test).is_some() {
        return true;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("events.db");
    events_tests::child::run(
        test,
        "store",
        &[("EVENT_BUS_STORE_PATH", Some(store.to_str().unwrap()))],
    );
    assert!(!store.exists(), "a bus was built from the environment");
    false
}

/// The store of the child's environment.
fn environment_store() -> &'static PathBuf {
    static STORE: OnceLock<PathBuf> = OnceLock::new();
    STORE.get_or_init(|| {
        PathBuf::from(
            std::env::var_os("EVENT_BUS_STORE_PATH").expect("the child runs with a store path"),
        )
    })
}

fn nothing_reached_the_environments_bus() {
    assert!(
        !environment_store().exists(),
        "a bus was built from the environment: {} exists",
        environment_store().display()
    );
    assert_eq!(REAL_HANDLER_RUNS.load(Ordering::SeqCst), 0);
}

/// Code under test that takes the process-wide bus, run as a spawned task:
/// returns the thread it ran on.
async fn ship_through_the_process_wide_bus(task: u32) -> ThreadId {
    let bus = get_event_bus().await.unwrap();
    bus.publish(ParcelShipped { task }).await.unwrap();
    std::thread::current().id()
}

fn tasks(bus: &RecordingBus) -> Vec<u32> {
    let mut tasks: Vec<u32> = bus
        .published::<ParcelShipped>()
        .iter()
        .map(|e| e.task)
        .collect();
    tasks.sort_unstable();
    tasks
}

fn panic_message(panic: Box<dyn Any + Send>) -> String {
    match panic.downcast::<String>() {
        Ok(message) => *message,
        Err(panic) => panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .unwrap_or_default(),
    }
}

/// The new-user trial's case: 8 spawned tasks on a 2-worker runtime published
/// 0 events to the test's bus, and 8 through a real bus onto disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_spawned_onto_other_workers_are_in_the_tests_scope() {
    if !in_child_with_a_store("tasks_spawned_onto_other_workers_are_in_the_tests_scope") {
        return;
    }
    let bus = RecordingBus::new();
    let _scope = scope_event_bus(&bus);

    let handles: Vec<_> = (0..8)
        .map(|task| tokio::spawn(ship_through_the_process_wide_bus(task)))
        .collect();
    let mut threads = Vec::new();
    for handle in handles {
        threads.push(handle.await.unwrap());
    }
    // They ran on the runtime's workers, not on the thread that opened the scope.
    let test_thread = std::thread::current().id();
    assert!(threads.iter().all(|t| *t != test_thread), "{threads:?}");
    assert_eq!(tasks(&bus), (0..8).collect::<Vec<_>>());

    // Scopes nest for spawned tasks too; set and reset from a spawned task
    // change the test's scope.
    {
        let inner = RecordingBus::new();
        let _inner = scope_event_bus(&inner);
        tokio::spawn(ship_through_the_process_wide_bus(100))
            .await
            .unwrap();
        assert_eq!(tasks(&inner), [100]);

        let replacement = RecordingBus::new();
        let given = replacement.event_bus();
        tokio::spawn(async move {
            reset_event_bus();
            set_event_bus(given);
        })
        .await
        .unwrap();
        ship_through_the_process_wide_bus(101).await;
        assert_eq!(tasks(&replacement), [101]);
        assert_eq!(tasks(&inner), [100]);
    }
    tokio::spawn(ship_through_the_process_wide_bus(102))
        .await
        .unwrap();
    assert_eq!(tasks(&bus), (0..8).chain([102]).collect::<Vec<_>>());
    nothing_reached_the_environments_bus();
}

/// A `std::thread` with a runtime of its own is in no scope: while the
/// test's scope is open, it gets a loud panic, not the environment's bus.
#[tokio::test]
async fn a_thread_outside_every_scope_panics_instead_of_building_the_real_bus() {
    if !in_child_with_a_store(
        "a_thread_outside_every_scope_panics_instead_of_building_the_real_bus",
    ) {
        return;
    }
    let bus = RecordingBus::new();
    let _scope = scope_event_bus(&bus);

    let stray = std::thread::Builder::new()
        .name("stray".into())
        .spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            runtime.block_on(ship_through_the_process_wide_bus(1))
        })
        .unwrap();
    let message = panic_message(stray.join().unwrap_err());
    // (The other tests of this binary may have scopes open too.)
    let (open, rest) = message
        .strip_prefix("get_event_bus() was called outside any event-bus scope while ")
        .and_then(|rest| rest.split_once(' '))
        .unwrap_or_else(|| panic!("{message}"));
    assert!(open.parse::<usize>().unwrap() >= 1, "{message}");
    assert!(
        rest.starts_with(
            "scope(s) are open in this process: this thread (`stray`) did not open one, and is not \
             running a task of a tokio runtime that did, so it would get the real bus built from the \
             environment"
        ),
        "{message}"
    );
    assert!(
        message.ends_with(
            "Pass the bus to the code on this thread (`bus.event_bus()`), or open a scope on it: \
             `let _scope = scope_event_bus(&bus);`"
        ),
        "{message}"
    );
    assert!(bus.published_raw().is_empty());
    nothing_reached_the_environments_bus();

    // A process-wide bus set explicitly (not built from the environment) is
    // still what unscoped code gets.
    let explicit = RecordingBus::new();
    let given = explicit.event_bus();
    std::thread::spawn(move || {
        set_event_bus(given);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(ship_through_the_process_wide_bus(2));
        reset_event_bus();
    })
    .join()
    .unwrap();
    assert_eq!(tasks(&explicit), [2]);
    assert!(bus.published_raw().is_empty());
    nothing_reached_the_environments_bus();
}

/// Two tests sharing one runtime, each with a scope: a task spawned on it
/// cannot be told apart, and says so.
#[test]
fn a_runtime_shared_by_two_scoped_tests_is_ambiguous() {
    if !in_child_with_a_store("a_runtime_shared_by_two_scoped_tests_is_ambiguous") {
        return;
    }
    let runtime = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap(),
    );
    let both_open = Arc::new(Barrier::new(2));
    let checked = Arc::new(Barrier::new(2));
    let test = |spawns: bool| {
        let (runtime, both_open, checked) = (
            Arc::clone(&runtime),
            Arc::clone(&both_open),
            Arc::clone(&checked),
        );
        std::thread::spawn(move || {
            runtime.block_on(async move {
                let bus = RecordingBus::new();
                let _scope = scope_event_bus(&bus);
                both_open.wait();
                let mut messages = Vec::new();
                if spawns {
                    let error = tokio::spawn(ship_through_the_process_wide_bus(1))
                        .await
                        .unwrap_err();
                    messages.push(panic_message(error.into_panic()));
                    let error = tokio::spawn(async { reset_event_bus() }).await.unwrap_err();
                    messages.push(panic_message(error.into_panic()));
                }
                // The test's own thread still has its own scope.
                ship_through_the_process_wide_bus(2).await;
                checked.wait();
                (messages, tasks(&bus))
            })
        })
    };
    let (first, second) = (test(true), test(false));
    let (messages, published) = first.join().unwrap();
    assert_eq!(published, [2]);
    assert_eq!(second.join().unwrap(), (vec![], vec![2]));
    assert_eq!(messages.len(), 2);
    for (message, what) in messages
        .iter()
        .zip(["get_event_bus()", "reset_event_bus()"])
    {
        assert_eq!(
            *message,
            format!(
                "{what} was called from a task of a tokio runtime on which 2 threads opened an event-bus \
                 scope (`scope_event_bus`): it cannot tell which test's bus to use. Pass the bus to the \
                 spawned task (`bus.event_bus()`), or give each test its own runtime (`#[tokio::test]` \
                 does)"
            )
        );
    }
    nothing_reached_the_environments_bus();
}
