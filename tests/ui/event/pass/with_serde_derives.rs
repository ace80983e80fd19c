use events_core::DomainEvent;

// The struct may derive serde itself; the event derive does not conflict.
// `#[serde(...)]` attributes are refused (see fail/serde_*.rs): the event's
// wire form is shaped by `#[event(...)]` only.
#[derive(DomainEvent, serde::Serialize, serde::Deserialize, Debug, PartialEq)]
#[event(company = "testclean", service = "api", version = 1, resource = "company", action = "created")]
struct CompanyCreated {
    company_name: String,
    #[event(skip)]
    secret: String,
}

fn main() {
    let e = CompanyCreated { company_name: "Acme".into(), secret: "hunter2".into() };
    // serde's own derive knows nothing of `#[event(skip)]` ...
    assert_eq!(
        serde_json::to_string(&e).unwrap(),
        r#"{"company_name":"Acme","secret":"hunter2"}"#
    );
    // ... and the event's attributes follow `#[event]` ones.
    assert_eq!(e.to_json().unwrap(), r#"{"company_name":"Acme"}"#);
}
