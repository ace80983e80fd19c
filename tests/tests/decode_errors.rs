//! Bad input never panics: every decoding error names the event (when it is
//! known), the field and what was expected.

use events_core::{wire, DomainEvent, RawEvent};
use proptest::prelude::*;

#[derive(DomainEvent, Debug, Clone, PartialEq)]
#[event(
    company = "testclean",
    service = "api",
    version = 1,
    resource = "company",
    action = "created"
)]
struct CompanyCreated {
    company_id: uuid::Uuid,
    company_name: String,
    employees: u32,
    nickname: Option<String>,
}

const NAME: &str = "testclean.api.1.event.company.created";

fn detail(attributes: &str) -> String {
    format!(
        r#"{{"id":"e1","type":"{NAME}","occurred_on":"2026-11-26T10:15:30Z","attributes":{attributes}}}"#
    )
}

/// Decodes through both paths (raw event, then typed; and the typed fast
/// path), which must agree on the error.
fn decode(attributes: &str) -> events_core::DecodeError {
    let text = detail(attributes);
    let fast = wire::decode_event::<CompanyCreated>(&text).unwrap_err();
    let slow = match wire::decode_detail(&text) {
        Ok(raw) => raw.decode::<CompanyCreated>().unwrap_err(),
        Err(e) => e,
    };
    assert_eq!(
        (fast.event(), fast.field(), fast.problem()),
        (slow.event(), slow.field(), slow.problem())
    );
    fast
}

#[track_caller]
fn assert_error(
    err: &events_core::DecodeError,
    event: Option<&str>,
    field: &str,
    expectation: &str,
) {
    assert_eq!(err.event(), event, "{err}");
    assert_eq!(err.field(), field, "{err}");
    let text = err.to_string();
    assert!(
        text.contains(expectation),
        "`{text}` should mention `{expectation}`"
    );
    if let Some(event) = event {
        assert!(text.contains(event), "`{text}` should name the event");
    }
    assert!(text.contains(field), "`{text}` should name the field");
}

#[test]
fn missing_field() {
    let err = decode(r#"{"company_id":"123e4567-e89b-12d3-a456-426614174000","employees":3}"#);
    assert_error(&err, Some(NAME), "company_name", "missing: expected String");
}

#[test]
fn optional_field_may_be_missing() {
    let raw = wire::decode_detail(&detail(
        r#"{"company_id":"123e4567-e89b-12d3-a456-426614174000","company_name":"Acme","employees":3}"#,
    ))
    .unwrap();
    assert_eq!(raw.decode::<CompanyCreated>().unwrap().nickname, None);
}

#[test]
fn wrong_type() {
    let err = decode(
        r#"{"company_id":"123e4567-e89b-12d3-a456-426614174000","company_name":5,"employees":3}"#,
    );
    assert_error(&err, Some(NAME), "company_name", "expected a string");
    let err = decode(r#"{"company_id":"not-a-uuid","company_name":"Acme","employees":3}"#);
    assert_error(&err, Some(NAME), "company_id", "UUID");
    let err = decode(
        r#"{"company_id":"123e4567-e89b-12d3-a456-426614174000","company_name":"A","employees":-1}"#,
    );
    assert_error(&err, Some(NAME), "employees", "expected u32");
}

#[test]
fn malformed_json() {
    let err = wire::decode_detail(r#"{"id": "e1", "type": "#).unwrap_err();
    assert_error(&err, None, "detail", "malformed JSON");
    let err = CompanyCreated::from_json("{not json").unwrap_err();
    assert_error(&err, Some(NAME), "attributes", "malformed JSON");
    let err = decode(r#""{\"company_name\": ""#);
    assert_error(&err, Some(NAME), "detail.attributes", "malformed JSON");
}

#[test]
fn attributes_not_an_object() {
    for (attributes, found) in [
        ("[1,2]", "an array"),
        ("42", "a number"),
        ("null", "null"),
        (r#""[1]""#, "an array"),
    ] {
        let err = decode(attributes);
        assert_error(&err, Some(NAME), "detail.attributes", found);
    }
}

#[test]
fn bad_timestamp() {
    let text =
        format!(r#"{{"id":"e1","type":"{NAME}","occurred_on":"yesterday","attributes":"{{}}"}}"#);
    let err = wire::decode_detail(&text).unwrap_err();
    assert_error(
        &err,
        Some(NAME),
        "detail.occurred_on",
        "expected an ISO 8601 time",
    );
    let text =
        format!(r#"{{"id":"e1","type":"{NAME}","occurred_on":1764152130,"attributes":"{{}}"}}"#);
    let err = wire::decode_detail(&text).unwrap_err();
    assert_error(
        &err,
        Some(NAME),
        "detail.occurred_on",
        "expected an ISO 8601 string",
    );
}

#[test]
fn missing_or_bad_identity() {
    let text =
        format!(r#"{{"type":"{NAME}","occurred_on":"2026-11-26T10:15:30Z","attributes":"{{}}"}}"#);
    assert_error(
        &wire::decode_detail(&text).unwrap_err(),
        Some(NAME),
        "detail.id",
        "missing",
    );
    let text = format!(
        r#"{{"id":"","type":"{NAME}","occurred_on":"2026-11-26T10:15:30Z","attributes":"{{}}"}}"#
    );
    assert_error(
        &wire::decode_detail(&text).unwrap_err(),
        Some(NAME),
        "detail.id",
        "non-empty string",
    );
    let text = r#"{"id":"e1","occurred_on":"2026-11-26T10:15:30Z","attributes":"{}"}"#;
    assert_error(
        &wire::decode_detail(text).unwrap_err(),
        None,
        "detail.type",
        "missing",
    );
}

#[test]
fn a_name_for_another_event() {
    let raw = RawEvent {
        id: "e1".into(),
        name: "testclean.api.1.event.company.deleted".into(),
        occurred_on: events_core::envelope::now(),
        attributes: "{}".into(),
    };
    let err = raw.decode::<CompanyCreated>().unwrap_err();
    assert_error(
        &err,
        Some(NAME),
        "type",
        "found `testclean.api.1.event.company.deleted`",
    );
}

#[test]
fn envelope_errors() {
    assert_error(
        &wire::decode_envelope("[]").unwrap_err(),
        None,
        "envelope",
        "expected a JSON object",
    );
    assert_error(
        &wire::decode_envelope(r#"{"detail":{}}"#).unwrap_err(),
        None,
        "detail-type",
        "missing",
    );
    let err = wire::decode_envelope(&format!(r#"{{"detail-type":"{NAME}"}}"#)).unwrap_err();
    assert_error(&err, Some(NAME), "detail", "missing");
    let err = wire::decode_envelope(&format!(r#"{{"detail-type":"{NAME}","detail":"text"}}"#))
        .unwrap_err();
    assert_error(&err, Some(NAME), "detail", "expected a JSON object");
    let err = wire::decode_envelope(&format!(
        r#"{{"detail-type":"{NAME}","detail":{{"id":"e1","type":"other.x.1.event.y.created","occurred_on":"2026-11-26T10:15:30Z","attributes":"{{}}"}}}}"#
    ))
    .unwrap_err();
    assert_error(&err, Some(NAME), "detail.type", "disagrees");
}

#[test]
fn detail_without_type_takes_the_envelope_detail_type() {
    let envelope = format!(
        r#"{{"detail-type":"{NAME}","detail":{{"id":"e1","occurred_on":"2026-11-26T10:15:30Z","attributes":"{{}}"}}}}"#
    );
    assert_eq!(wire::decode_envelope(&envelope).unwrap().event.name, NAME);
}

fn arbitrary_json_text() -> impl Strategy<Value = String> {
    prop_oneof![
        // Arbitrary text, including invalid UTF-8 replaced lossily.
        prop::collection::vec(any::<u8>(), 0..256)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        // Structured near-misses: a detail with random values.
        (".*", ".*", ".*", ".*").prop_map(|(id, ty, at, attrs)| {
            serde_json::json!({"id": id, "type": ty, "occurred_on": at, "attributes": attrs})
                .to_string()
        }),
        // Valid shape, random attributes object.
        prop::collection::btree_map("[a-z_]{1,12}", ".*", 0..6).prop_map(|m| detail(
            &serde_json::to_string(&serde_json::to_string(&m).unwrap()).unwrap()
        )),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// The decoder, fed anything, returns `Ok` or `Err` and never panics.
    #[test]
    fn decoders_never_panic(text in arbitrary_json_text()) {
        let _ = wire::decode_envelope(&text);
        if let Ok(raw) = wire::decode_detail(&text) {
            let _ = raw.decode::<CompanyCreated>();
            let _ = raw.attributes_map();
        }
        let _ = CompanyCreated::from_json(&text);
        let _ = wire::decode_event::<CompanyCreated>(&text);
        let _ = events_core::EventName::parse(&text);
    }
}
