use events_core::DomainEvent;

/// A type without serde's traits: fine on a skipped field.
#[derive(Debug, Default, PartialEq)]
struct Connection(u8);

fn default_country() -> String {
    "CO".to_owned()
}

#[derive(DomainEvent, Debug, PartialEq)]
#[event(company = "testclean", service = "api", version = 1, resource = "company", action = "created")]
struct CompanyCreated {
    #[event(rename = "companyName")]
    name: String,
    #[event(skip)]
    cache: Vec<u8>,
    #[event(skip)]
    connection: Connection,
    #[event(default)]
    employees: u32,
    #[event(default = "default_country", rename = "country")]
    country_code: String,
    r#type: String,
}

fn main() {
    let event = CompanyCreated {
        name: "Acme".into(),
        cache: vec![1, 2],
        connection: Connection(7),
        employees: 0,
        country_code: "CO".into(),
        r#type: "llc".into(),
    };
    let dict = event.to_dict().unwrap();
    assert_eq!(dict["companyName"], "Acme");
    assert!(!dict.contains_key("cache"));
    assert_eq!(dict["type"], "llc");
    let mut minimal = serde_json::Map::new();
    minimal.insert("companyName".into(), "Acme".into());
    minimal.insert("type".into(), "llc".into());
    let back = CompanyCreated::from_dict(&minimal).unwrap();
    assert_eq!(back, CompanyCreated { cache: vec![], connection: Connection(0), ..event });
}
