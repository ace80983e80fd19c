//! Round trips: `from_dict(to_dict(e)) == e` for every supported field type,
//! and wire encode → decode keeps id, `occurred_on` and attributes exactly.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, TimeZone, Utc};
use events_core::{wire, DomainEvent, Event, RawEvent};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Address {
    street: String,
    zip: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Plan {
    Free,
    Seats(u32),
    Custom { name: String, price_cents: u64 },
}

#[derive(DomainEvent, Debug, Clone, PartialEq)]
#[event(
    company = "testclean",
    service = "api",
    version = 1,
    resource = "company",
    action = "registered"
)]
struct CompanyRegistered {
    id: uuid::Uuid,
    name: String,
    small: u8,
    count: u32,
    big: u64,
    delta: i64,
    ratio: f64,
    active: bool,
    nickname: Option<String>,
    tags: Vec<String>,
    scores: HashMap<String, i32>,
    ordered: BTreeMap<String, Vec<u16>>,
    founded: DateTime<Utc>,
    day: chrono::NaiveDate,
    address: Address,
    plan: Plan,
    #[event(rename = "extraData")]
    extra: serde_json::Value,
    #[event(skip)]
    cache: Vec<u8>,
    #[event(default)]
    optional_count: u32,
}

fn plan() -> impl Strategy<Value = Plan> {
    prop_oneof![
        Just(Plan::Free),
        any::<u32>().prop_map(Plan::Seats),
        (".*", any::<u64>()).prop_map(|(name, price_cents)| Plan::Custom { name, price_cents }),
    ]
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        ".*".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map("[a-z]{1,4}", inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn time() -> impl Strategy<Value = DateTime<Utc>> {
    // Whole range of years 1970..2200 with nanoseconds.
    (0i64..7_258_118_400, 0u32..1_000_000_000).prop_filter_map("valid time", |(secs, nanos)| {
        Utc.timestamp_opt(secs, nanos).single()
    })
}

prop_compose! {
    fn company()(
        id in any::<u128>(),
        name in ".*",
        small in any::<u8>(),
        count in any::<u32>(),
        big in any::<u64>(),
        delta in any::<i64>(),
        ratio in any::<f64>().prop_filter("finite", |f| f.is_finite()),
        active in any::<bool>(),
        nickname in proptest::option::of(".*"),
        tags in prop::collection::vec(".*", 0..4),
        scores in prop::collection::hash_map(".*", any::<i32>(), 0..4),
        ordered in prop::collection::btree_map(".*", prop::collection::vec(any::<u16>(), 0..3), 0..3),
        founded in time(),
        day in (-100_000i32..100_000).prop_map(|d| chrono::NaiveDate::from_num_days_from_ce_opt(700_000 + d).unwrap_or_default()),
        street in ".*",
        zip in proptest::option::of("[0-9]{5}"),
        plan in plan(),
        extra in json_value(),
        optional_count in any::<u32>(),
    ) -> CompanyRegistered {
        CompanyRegistered {
            id: uuid::Uuid::from_u128(id), name, small, count, big, delta, ratio, active, nickname, tags,
            scores, ordered, founded, day, address: Address { street, zip }, plan, extra,
            cache: Vec::new(), optional_count,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn dict_round_trip(event in company()) {
        let dict = event.to_dict().unwrap();
        prop_assert!(!dict.contains_key("cache"));
        prop_assert!(dict.contains_key("extraData"));
        prop_assert_eq!(CompanyRegistered::from_dict(&dict).unwrap(), event);
    }

    #[test]
    fn json_round_trip(event in company()) {
        let json = event.to_json().unwrap();
        prop_assert_eq!(CompanyRegistered::from_json(&json).unwrap(), event);
    }

    #[test]
    fn wire_round_trip_keeps_identity_and_attributes(event in company(), id in ".+", at in time()) {
        let event = Event::with_identity(id.as_str(), at, event);
        let raw = RawEvent::from_event(&event).unwrap();
        let entry = wire::entry(&raw, "testclean.api");
        prop_assert_eq!(&entry.detail_type, CompanyRegistered::EVENT_NAME);

        let decoded = wire::decode_detail(&entry.detail).unwrap();
        prop_assert_eq!(&decoded, &raw);
        let back = decoded.decode::<CompanyRegistered>().unwrap();
        prop_assert_eq!(&wire::decode_event::<CompanyRegistered>(&entry.detail).unwrap(), &back);
        prop_assert_eq!(back.id().as_str(), id.as_str());
        // Kept to the microsecond, exactly.
        prop_assert_eq!(back.occurred_on().timestamp_micros(), at.timestamp_micros());
        prop_assert_eq!(back.occurred_on(), event.occurred_on());
        prop_assert_eq!(back.payload(), event.payload());
    }

    #[test]
    fn envelope_round_trip(event in company()) {
        let event = Event::new(event);
        let raw = RawEvent::from_event(&event).unwrap();
        let entry = wire::entry(&raw, "testclean.api");
        let detail: serde_json::Value = serde_json::from_str(&entry.detail).unwrap();
        let envelope = serde_json::json!({
            "version": "0", "id": "7bf73129-1428-4cd3-a780-95db273d1602",
            "detail-type": entry.detail_type, "source": entry.source,
            "account": "123456789012", "time": "2026-11-26T10:15:30Z", "region": "us-east-1",
            "resources": [], "detail": detail,
        });
        let decoded = wire::decode_envelope(&envelope.to_string()).unwrap();
        prop_assert_eq!(decoded.source.as_deref(), Some("testclean.api"));
        prop_assert_eq!(decoded.event.decode::<CompanyRegistered>().unwrap(), event);
    }
}

#[test]
fn detail_is_written_as_the_python_package_writes_it() {
    let at = Utc.with_ymd_and_hms(2026, 11, 26, 10, 15, 30).unwrap()
        + chrono::Duration::microseconds(123_456);
    let raw = RawEvent {
        id: "0d6f1c7e5b6a4e55b1d2c3a4b5c6d7e8".into(),
        name: "testclean.api.1.event.company.created".into(),
        occurred_on: at,
        attributes: r#"{"company_name":"Acme"}"#.into(),
        trace: None,
    };
    assert_eq!(
        wire::encode_detail(&raw),
        r#"{"id":"0d6f1c7e5b6a4e55b1d2c3a4b5c6d7e8","type":"testclean.api.1.event.company.created","occurred_on":"2026-11-26T10:15:30.123456+00:00","attributes":"{\"company_name\":\"Acme\"}"}"#
    );
}

#[test]
fn readers_accept_every_documented_time_and_attribute_form() {
    let expected = Utc.with_ymd_and_hms(2026, 11, 26, 10, 15, 30).unwrap();
    for (text, micros) in [
        ("2026-11-26T10:15:30Z", 0),
        ("2026-11-26T10:15:30+00:00", 0),
        ("2026-11-26T05:15:30-05:00", 0),
        ("2026-11-26T10:15:30.5Z", 500_000),
        ("2026-11-26T10:15:30.123456+00:00", 123_456),
        ("2026-11-26T10:15:30", 0),
        ("2026-11-26T10:15:30.123456", 123_456),
        ("2026-11-26 10:15:30.123456", 123_456),
    ] {
        for attributes in [r#""{\"a\":1}""#, r#"{"a":1}"#] {
            let detail = format!(
                r#"{{"id":"x","type":"testclean.api.1.event.company.created","occurred_on":"{text}","attributes":{attributes}}}"#
            );
            let raw = wire::decode_detail(&detail).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(
                raw.occurred_on,
                expected + chrono::Duration::microseconds(micros),
                "{text}"
            );
            assert_eq!(raw.attributes_map().unwrap()["a"], 1);
        }
    }
}

#[test]
fn event_identity_is_fixed_at_creation_and_kept_to_microseconds() {
    #[derive(DomainEvent, Debug, Clone, PartialEq)]
    #[event(
        company = "testclean",
        service = "api",
        version = 1,
        resource = "company",
        action = "deleted"
    )]
    struct CompanyDeleted;

    let a = Event::new(CompanyDeleted);
    let b = Event::new(CompanyDeleted);
    assert_ne!(a.id(), b.id(), "each event gets its own id");
    assert!(
        uuid::Uuid::parse_str(a.id().as_str()).is_ok(),
        "generated ids are UUIDs"
    );
    assert_eq!(
        a.occurred_on().timestamp_subsec_nanos() % 1000,
        0,
        "microsecond precision"
    );
    let raw = RawEvent::from_event(&a).unwrap();
    assert_eq!(raw.decode::<CompanyDeleted>().unwrap(), a);
}

/// The crates whose types the API takes are re-exported by `events-core`,
/// so a user names `Map`, `Value`, `DateTime<Utc>` and `Uuid` through it
/// alone, at the versions it was built with.
#[test]
fn the_types_the_api_takes_are_reexported() {
    use events_core::chrono::{DateTime, TimeZone, Utc};
    use events_core::serde_json::{json, Map, Value};
    use events_core::uuid::Uuid;
    use events_core::EventId;

    #[derive(DomainEvent, Debug, Clone, PartialEq)]
    #[event(
        company = "acme",
        service = "shop",
        version = 1,
        resource = "cart",
        action = "emptied"
    )]
    struct CartEmptied {
        cart: Uuid,
        at: DateTime<Utc>,
    }

    let id = Uuid::from_u128(7);
    let at: DateTime<Utc> = Utc.with_ymd_and_hms(2026, 11, 26, 10, 15, 30).unwrap();
    let dict: Map<String, Value> = CartEmptied { cart: id, at }.to_dict().unwrap();
    assert_eq!(
        Value::Object(dict.clone()),
        json!({"cart": id.to_string(), "at": "2026-11-26T10:15:30Z"})
    );
    let event = Event::<CartEmptied>::from_dict(EventId::from(id), at, &dict).unwrap();
    assert_eq!(event.id().as_str(), id.to_string());
    assert_eq!(event.occurred_on(), at);
    assert_eq!(event.cart, id);
}
