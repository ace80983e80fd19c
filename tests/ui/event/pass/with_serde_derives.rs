use events_core::DomainEvent;

// The struct may derive serde itself; the event derive does not conflict.
#[derive(DomainEvent, serde::Serialize, serde::Deserialize, Debug, PartialEq)]
#[event(company = "testclean", service = "api", version = 1, resource = "company", action = "created")]
#[serde(rename_all = "camelCase")]
struct CompanyCreated {
    company_name: String,
}

fn main() {
    let e = CompanyCreated { company_name: "Acme".into() };
    // serde's own derive follows serde attributes ...
    assert_eq!(serde_json::to_string(&e).unwrap(), r#"{"companyName":"Acme"}"#);
    // ... and the event's attributes follow `#[event]` ones.
    assert_eq!(e.to_json().unwrap(), r#"{"company_name":"Acme"}"#);
}
