//! Golden wire fixtures (`events_core::testing::assert_wire_golden`): the
//! file is written once, compared afterwards, a field change fails with a
//! field-by-field diff, `EVENTS_UPDATE_GOLDEN=1` rewrites it, and under CI a
//! missing file fails. One test, in a binary of its own; the steps that need
//! `CI` or `EVENTS_UPDATE_GOLDEN` set or unset run in child processes given
//! that environment (no `set_var`).

use std::panic::AssertUnwindSafe;

use events_core::testing::{assert_wire_golden, fixed_event};
use events_core::{wire, DomainEvent, Event, RawEvent};

mod v1 {
    use events_core::DomainEvent;

    #[derive(DomainEvent, Debug, Clone, PartialEq)]
    #[event(
        company = "kit",
        service = "golden",
        version = 1,
        resource = "company",
        action = "created"
    )]
    pub struct CompanyCreated {
        pub company_name: String,
        pub employees: u32,
    }
}

/// The same event after a field was renamed and one added: a new type of
/// the same name would be rejected by the bus, but the golden check only
/// serializes, so both can live in one test.
mod v2 {
    use events_core::DomainEvent;

    #[derive(DomainEvent, Debug, Clone, PartialEq)]
    #[event(
        company = "kit",
        service = "golden",
        version = 1,
        resource = "company",
        action = "created"
    )]
    pub struct CompanyCreated {
        pub name: String,
        pub employees: u32,
        pub country: Option<String>,
    }
}

/// A compatible change: an optional field added.
mod v3 {
    use events_core::DomainEvent;

    #[derive(DomainEvent, Debug, Clone, PartialEq)]
    #[event(
        company = "kit",
        service = "golden",
        version = 1,
        resource = "company",
        action = "created"
    )]
    pub struct CompanyCreated {
        pub company_name: String,
        pub employees: u32,
        pub country: Option<String>,
    }
}

fn message(f: impl FnOnce()) -> String {
    match std::panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(()) => panic!("expected a panic, the assertion passed"),
        Err(panic) => panic
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_else(|| "a panic without a message".into()),
    }
}

fn v1_event() -> Event<v1::CompanyCreated> {
    fixed_event(v1::CompanyCreated {
        company_name: "Acme".into(),
        employees: 12,
    })
}

const TEST: &str = "golden_files_are_written_once_compared_after_and_updated_on_request";

/// The folder the child processes share, from the parent.
const DIR_VAR: &str = "EVENTS_GOLDEN_TEST_DIR";

#[test]
fn golden_files_are_written_once_compared_after_and_updated_on_request() {
    let Some(phase) = events_tests::child::phase(TEST) else {
        // Each step in a child process with its environment, in order, on
        // one folder.
        let dir = tempfile::tempdir().unwrap();
        let dir_value = dir.path().to_str().unwrap();
        for (phase, ci, update) in [
            ("first", None, None),
            ("update", None, Some("1")),
            ("after", None, None),
            ("ci", Some("true"), None),
        ] {
            events_tests::child::run(
                TEST,
                phase,
                &[
                    (DIR_VAR, Some(dir_value)),
                    ("CI", ci),
                    ("EVENTS_UPDATE_GOLDEN", update),
                ],
            );
        }
        a_bus_refuses_the_versions_sharing_a_name();
        return;
    };
    let dir = std::path::PathBuf::from(std::env::var_os(DIR_VAR).unwrap());
    let path = dir.join("golden/company_created.json");
    match phase.as_str() {
        "first" => first_run_and_comparisons(&path),
        "update" => update_on_request(&path),
        "after" => after_the_update(&path),
        "ci" => missing_under_ci(&dir),
        other => panic!("no phase `{other}`"),
    }
}

/// `CI` and `EVENTS_UPDATE_GOLDEN` unset: written, then compared.
fn first_run_and_comparisons(path: &std::path::Path) {
    // First run: the file is written, in the SPEC §4 Detail form.
    assert_wire_golden(path, &v1_event());
    let written = std::fs::read_to_string(path).unwrap();
    assert_eq!(
        written,
        r#"{
  "id": "00000000-0000-7000-8000-000000000001",
  "type": "kit.golden.1.event.company.created",
  "occurred_on": "2026-01-01T00:00:00.000000+00:00",
  "attributes": "{\"company_name\":\"Acme\",\"employees\":12}"
}
"#
    );
    // It is the wire form: the wire reader takes it, and it is the Detail
    // the bus sends, field for field.
    let raw = RawEvent::from_event(&v1_event()).unwrap();
    assert_eq!(wire::decode_detail(&written).unwrap(), raw);
    let sent: serde_json::Value = serde_json::from_str(&wire::encode_detail(&raw)).unwrap();
    let golden: serde_json::Value = serde_json::from_str(&written).unwrap();
    assert_eq!(sent, golden);

    // Later runs compare: the same event passes.
    assert_wire_golden(path, &v1_event());

    // A renamed field fails, with a field diff, and says old events no
    // longer decode.
    let renamed = fixed_event(v2::CompanyCreated {
        name: "Acme".into(),
        employees: 12,
        country: Some("NL".into()),
    });
    let shown = path.display();
    assert_eq!(
        message(|| assert_wire_golden(path, &renamed)),
        format!(
            "the wire form of `kit.golden.1.event.company.created` differs from its golden file {shown} (- golden, + now):\n\
             \x20 - attributes.company_name: \"Acme\"\n\
             \x20 + attributes.name: \"Acme\"\n\
             \x20 + attributes.country: \"NL\"\n\
             the golden event no longer decodes as `testing_golden::v2::CompanyCreated`: \
             cannot decode event `kit.golden.1.event.company.created`: field `name`: missing: expected String.\n\
             If the change is intended, run `EVENTS_UPDATE_GOLDEN=1 cargo test` and review the file's diff."
        )
    );

    // A changed value and a compatible added field.
    let added = added();
    assert_eq!(
        message(|| assert_wire_golden(path, &added)),
        format!(
            "the wire form of `kit.golden.1.event.company.created` differs from its golden file {shown} (- golden, + now):\n\
             \x20 - attributes.employees: 12\n\
             \x20 + attributes.employees: 13\n\
             \x20 + attributes.country: null\n\
             the golden event still decodes as `testing_golden::v3::CompanyCreated`.\n\
             If the change is intended, run `EVENTS_UPDATE_GOLDEN=1 cargo test` and review the file's diff."
        )
    );
    assert_eq!(
        std::fs::read_to_string(path).unwrap(),
        written,
        "a failed comparison leaves the file"
    );
}

fn added() -> Event<v3::CompanyCreated> {
    fixed_event(v3::CompanyCreated {
        company_name: "Acme".into(),
        employees: 13,
        country: None,
    })
}

/// EVENTS_UPDATE_GOLDEN=1 rewrites it.
fn update_on_request(path: &std::path::Path) {
    assert_wire_golden(path, &added());
}

/// Unset again: the new form passes.
fn after_the_update(path: &std::path::Path) {
    let added = added();
    assert_wire_golden(path, &added);
    assert!(std::fs::read_to_string(path).unwrap().contains(
        r#""attributes": "{\"company_name\":\"Acme\",\"employees\":13,\"country\":null}""#
    ));

    // A file edited by hand into something that is not JSON: a line diff.
    std::fs::write(path, "not json\n").unwrap();
    let text = message(|| assert_wire_golden(path, &added));
    assert!(
        text.contains("(- golden, + now):\n  - not json\n  + {\n  +   \"id\": \"00000000-0000-7000-8000-000000000001\",\n"),
        "{text}"
    );
}

/// Under CI (`CI=true`) a missing golden file fails instead of being written.
fn missing_under_ci(dir: &std::path::Path) {
    let missing = dir.join("golden/missing.json");
    assert_eq!(
        message(|| assert_wire_golden(&missing, &v1_event())),
        format!(
            "the golden file {} of `kit.golden.1.event.company.created` is missing; run \
             `EVENTS_UPDATE_GOLDEN=1 cargo test` and commit it",
            missing.display()
        )
    );
    assert!(!missing.exists());
}

fn a_bus_refuses_the_versions_sharing_a_name() {
    // The versions share a name, which a bus refuses: the recording bus's
    // constructor says so (the order of the two types follows the linker).
    assert_eq!(
        v1::CompanyCreated::EVENT_NAME,
        v2::CompanyCreated::EVENT_NAME
    );
    let text = message(|| {
        events_core::testing::RecordingBus::new();
    });
    assert!(
        text.starts_with(
            "cannot build the recording bus: event name `kit.golden.1.event.company.created` is claimed by two types, `testing_golden::v"
        ),
        "{text}"
    );
    assert!(matches!(
        events_core::testing::RecordingBus::builder().build(),
        Err(events_core::BusError::DuplicateEventName(_))
    ));
}
