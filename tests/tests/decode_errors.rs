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
        occurred_on: chrono::Utc::now(),
        attributes: "{}".into(),
        trace: None,
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

/// Nested values: the error gives the path to the value at fault.
mod nested {
    use std::collections::BTreeMap;

    use events_core::DomainEvent;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Serialize, Deserialize)]
    pub struct Line {
        pub sku: String,
        pub quantity: u32,
    }

    #[derive(Debug, Serialize, Deserialize)]
    pub struct Address {
        pub zip: u32,
    }

    #[derive(Debug, Serialize, Deserialize)]
    pub struct Customer {
        pub address: Address,
    }

    #[derive(DomainEvent, Debug)]
    #[event(
        company = "acme",
        service = "shop",
        version = 1,
        resource = "order",
        action = "placed"
    )]
    pub struct OrderPlaced {
        pub lines: Vec<Line>,
        pub customer: Customer,
        #[event(rename = "priceList")]
        pub prices: BTreeMap<String, Vec<u64>>,
        pub note: Option<String>,
    }

    pub const NAME: &str = "acme.shop.1.event.order.placed";

    /// Decodes through `from_json` and `from_dict`, which must agree.
    pub fn decode(attributes: &str) -> events_core::DecodeError {
        let from_json = OrderPlaced::from_json(attributes).unwrap_err();
        let map: serde_json::Value = serde_json::from_str(attributes).unwrap();
        let from_dict = OrderPlaced::from_dict(map.as_object().unwrap()).unwrap_err();
        assert_eq!(
            (from_json.field(), from_json.problem()),
            (from_dict.field(), from_dict.problem())
        );
        from_json
    }
}

const LINES: &str = r#"[{"sku":"a","quantity":1},{"sku":"b","quantity":2}"#;

#[test]
fn errors_inside_nested_values_give_the_path() {
    let err = nested::decode(&format!(
        r#"{{"lines":{LINES},{{"sku":"c","quantity":"three"}}],"customer":{{"address":{{"zip":1}}}},"priceList":{{}}}}"#
    ));
    assert_error(
        &err,
        Some(nested::NAME),
        "lines[2].quantity",
        "expected u32",
    );
    assert_eq!(
        err.to_string(),
        "cannot decode event `acme.shop.1.event.order.placed`: field `lines[2].quantity`: \
         invalid type: string \"three\", expected u32"
    );

    let err = nested::decode(&format!(
        r#"{{"lines":{LINES}],"customer":{{"address":{{"zip":"75001x"}}}},"priceList":{{}}}}"#
    ));
    assert_error(
        &err,
        Some(nested::NAME),
        "customer.address.zip",
        "expected u32",
    );

    // A missing field of a nested struct: its own path, worded as a
    // missing top-level attribute is (`field `x`: missing...`).
    let err = nested::decode(&format!(
        r#"{{"lines":{LINES},{{"sku":"c"}}],"customer":{{"address":{{"zip":1}}}},"priceList":{{}}}}"#
    ));
    assert_error(&err, Some(nested::NAME), "lines[2].quantity", "missing");
    assert_eq!(
        err.to_string(),
        "cannot decode event `acme.shop.1.event.order.placed`: field `lines[2].quantity`: missing"
    );
    let err = nested::decode(&format!(
        r#"{{"lines":{LINES}],"customer":{{"address":{{}}}},"priceList":{{}}}}"#
    ));
    assert_error(&err, Some(nested::NAME), "customer.address.zip", "missing");
    assert_eq!(err.problem(), "missing");

    // Map keys and renamed attributes: the wire name, then the key.
    let err = nested::decode(&format!(
        r#"{{"lines":{LINES}],"customer":{{"address":{{"zip":1}}}},"priceList":{{"eur":[1,-2]}}}}"#
    ));
    assert_error(&err, Some(nested::NAME), "priceList.eur[1]", "expected u64");

    // A top-level value still names just the attribute.
    let err = nested::decode(&format!(
        r#"{{"lines":{LINES}],"customer":{{"address":{{"zip":1}}}},"priceList":{{}},"note":7}}"#
    ));
    assert_error(&err, Some(nested::NAME), "note", "expected a string");
    let err = nested::decode(r#"{"lines":{},"customer":{"address":{"zip":1}},"priceList":{}}"#);
    assert_error(&err, Some(nested::NAME), "lines", "expected a sequence");
}

/// An attribute sent under its Rust name instead of its `rename`: the
/// error says so, through `from_json`, `from_dict` and the wire decoders.
#[test]
fn a_renamed_field_sent_under_its_rust_name_gets_a_hint() {
    let attributes =
        format!(r#"{{"lines":{LINES}],"customer":{{"address":{{"zip":1}}}},"prices":{{}}}}"#);
    let err = nested::decode(&attributes);
    assert_error(
        &err,
        Some(nested::NAME),
        "priceList",
        "missing: expected BTreeMap<String, Vec<u64>> (found `prices`; this field is renamed to `priceList`)",
    );
    let text = format!(
        r#"{{"id":"e1","type":"{}","occurred_on":"2026-11-26T10:15:30Z","attributes":{attributes}}}"#,
        nested::NAME
    );
    let fast = wire::decode_event::<nested::OrderPlaced>(&text).unwrap_err();
    assert_eq!(fast.problem(), err.problem());
    let slow = wire::decode_detail(&text)
        .unwrap()
        .decode::<nested::OrderPlaced>()
        .unwrap_err();
    assert_eq!(slow.problem(), err.problem());

    // Without the Rust name in the input, no hint.
    let err = nested::decode(&format!(
        r#"{{"lines":{LINES}],"customer":{{"address":{{"zip":1}}}}}}"#
    ));
    assert_eq!(err.field(), "priceList");
    assert!(!err.problem().contains("found"), "{err}");
}

#[test]
fn nested_paths_reach_the_wire_decoders() {
    let attributes = serde_json::to_string(&format!(
        r#"{{"lines":{LINES},{{"sku":"c","quantity":-1}}],"customer":{{"address":{{"zip":1}}}},"priceList":{{}}}}"#
    ))
    .unwrap();
    let text = format!(
        r#"{{"id":"e1","type":"{}","occurred_on":"2026-11-26T10:15:30Z","attributes":{attributes}}}"#,
        nested::NAME
    );
    let fast = wire::decode_event::<nested::OrderPlaced>(&text).unwrap_err();
    assert_error(
        &fast,
        Some(nested::NAME),
        "lines[2].quantity",
        "expected u32",
    );
    let slow = wire::decode_detail(&text)
        .unwrap()
        .decode::<nested::OrderPlaced>()
        .unwrap_err();
    assert_eq!(slow.field(), "lines[2].quantity");
}

/// Every reader of a JSON object words a refused object the same way, from
/// one helper: serde's message without a position inside the text.
#[test]
fn object_errors_read_the_same_everywhere() {
    let detail = format!(
        r#"{{"id":"e1","id":"e2","type":"{NAME}","occurred_on":"2026-11-26T10:15:30Z","attributes":"{{}}"}}"#
    );
    let err = wire::decode_detail(&detail).unwrap_err();
    assert_error(&err, None, "detail", "duplicate field `id`");
    assert_eq!(err.problem(), "duplicate field `id`");
    let envelope = format!(r#"{{"detail-type":"{NAME}","detail":{{}},"detail":{{}}}}"#);
    let err = wire::decode_envelope(&envelope).unwrap_err();
    assert_eq!(err.problem(), "duplicate field `detail`");

    for (text, found) in [
        ("[1]", "an array"),
        (" 42", "a number"),
        ("\"{}\"", "a string"),
    ] {
        let problems = [
            CompanyCreated::from_json(text).unwrap_err(),
            wire::decode_envelope(text).unwrap_err(),
            wire::decode_detail(text).unwrap_err(),
            RawEvent {
                id: "e1".into(),
                name: NAME.into(),
                occurred_on: chrono::Utc::now(),
                attributes: text.into(),
                trace: None,
            }
            .attributes_map()
            .unwrap_err(),
        ]
        .map(|e| e.problem().to_owned());
        for problem in problems {
            assert_eq!(problem, format!("expected a JSON object, found {found}"));
        }
    }
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
