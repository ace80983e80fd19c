use std::collections::{BTreeMap, HashMap};

use events_core::DomainEvent;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Address {
    street: String,
    zip: Option<String>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
enum Plan {
    Free,
    Pro { seats: u32 },
}

#[derive(DomainEvent, Debug, Clone, PartialEq)]
#[event(company = "testclean", service = "api", version = 2, resource = "company", action = "registered")]
struct CompanyRegistered {
    id: uuid::Uuid,
    name: String,
    employees: u32,
    revenue: i64,
    rating: f64,
    active: bool,
    nickname: Option<String>,
    tags: Vec<String>,
    scores: HashMap<String, u8>,
    ordered: BTreeMap<String, Vec<i32>>,
    founded: chrono::DateTime<chrono::Utc>,
    day: chrono::NaiveDate,
    address: Address,
    plan: Plan,
    raw: serde_json::Value,
}

fn main() {
    let event = CompanyRegistered {
        id: uuid::Uuid::nil(),
        name: "Acme".into(),
        employees: 3,
        revenue: -1,
        rating: 4.5,
        active: true,
        nickname: None,
        tags: vec!["a".into()],
        scores: HashMap::from([("x".into(), 1)]),
        ordered: BTreeMap::from([("k".into(), vec![1, 2])]),
        founded: chrono::DateTime::UNIX_EPOCH,
        day: chrono::NaiveDate::MIN,
        address: Address { street: "Main".into(), zip: Some("1".into()) },
        plan: Plan::Pro { seats: 5 },
        raw: serde_json::json!({"free": ["form"]}),
    };
    let dict = event.to_dict().unwrap();
    assert_eq!(CompanyRegistered::from_dict(&dict).unwrap(), event);
}
