//! `scope_event_bus`: while a scope is open on a thread, the process-wide
//! bus functions read and change the scope's slot only; closing it restores
//! what was there; scopes nest. A binary of its own: it changes the
//! process-wide bus (and runs a test in a child process given the
//! environment it needs).

use events_core::testing::{scope_event_bus, RecordingBus};
use events_core::{get_event_bus, reset_event_bus, set_event_bus, DomainEvent};

#[derive(DomainEvent, Debug, Clone, PartialEq)]
#[event(
    company = "kit",
    service = "scope",
    version = 1,
    resource = "marker",
    action = "set"
)]
struct MarkerSet {
    by: String,
}

async fn mark(by: &str) {
    get_event_bus()
        .await
        .unwrap()
        .publish(MarkerSet { by: by.into() })
        .await
        .unwrap();
}

fn marks(bus: &RecordingBus) -> Vec<String> {
    bus.published::<MarkerSet>()
        .into_iter()
        .map(|e| e.into_payload().by)
        .collect()
}

#[tokio::test]
async fn scopes_shadow_the_process_wide_bus_nest_and_restore_it() {
    // Nothing here builds a bus from the environment onto disk: the body
    // runs in a child process given EVENT_BUS_ENABLED=false (no set_var
    // beside the binary's other tests).
    const TEST: &str = "scopes_shadow_the_process_wide_bus_nest_and_restore_it";
    if events_tests::child::phase(TEST).is_none() {
        events_tests::child::run(TEST, "disabled", &[("EVENT_BUS_ENABLED", Some("false"))]);
        return;
    }

    let global = RecordingBus::new();
    set_event_bus(global.event_bus());
    mark("global").await;

    let outer = RecordingBus::new();
    {
        let _outer = scope_event_bus(&outer);
        mark("outer").await;
        {
            let inner = RecordingBus::new();
            let _inner = scope_event_bus(&inner);
            mark("inner").await;
            assert_eq!(marks(&inner), ["inner"]);
        }
        mark("outer again").await;

        // reset and set inside the scope change the scope only.
        reset_event_bus();
        let replacement = RecordingBus::new();
        set_event_bus(replacement.event_bus());
        mark("replacement").await;
        assert_eq!(marks(&replacement), ["replacement"]);

        // After a reset, the scope builds its own bus from the environment
        // (here: disabled, so nothing is kept anywhere) and keeps it.
        reset_event_bus();
        let built = get_event_bus().await.unwrap();
        assert!(!built.config().enabled);
        mark("built").await;
        assert!(get_event_bus().await.unwrap().store().is_none());
    }
    assert_eq!(marks(&outer), ["outer", "outer again"]);

    // The process-wide bus was never touched by the scopes.
    mark("global again").await;
    assert_eq!(marks(&global), ["global", "global again"]);
    reset_event_bus();
}

#[test]
fn a_scope_belongs_to_its_thread() {
    let bus = RecordingBus::new();
    let _scope = scope_event_bus(&bus);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        // The test thread sees its scope...
        get_event_bus()
            .await
            .unwrap()
            .publish(MarkerSet { by: "here".into() })
            .await
            .unwrap();
    });
    // ...another thread has scopes of its own.
    let other = std::thread::spawn(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let own = RecordingBus::new();
        let _scope = scope_event_bus(&own);
        runtime.block_on(mark("there"));
        marks(&own)
    })
    .join()
    .unwrap();
    assert_eq!(other, ["there"]);
    assert_eq!(marks(&bus), ["here"]);
}
