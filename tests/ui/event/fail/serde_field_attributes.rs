// `#[serde(...)]` on an event's fields is refused: the derive writes the
// event's attributes itself, so these would be ignored on the wire (the
// `secret` would be published).
use events_core::DomainEvent;
use serde::{Deserialize, Serialize};

#[derive(DomainEvent, Serialize, Deserialize, Debug, Clone)]
#[event(company = "acme", service = "shop", version = 1, resource = "cart", action = "emptied")]
pub struct CartEmptied {
    #[serde(rename = "userId")]
    pub user_id: String,
    #[serde(skip)]
    pub secret: String,
    #[serde(default)]
    pub count: u32,
    #[serde(default = "default_note", alias = "memo")]
    pub note: String,
    #[serde(flatten)]
    pub extra: std::collections::BTreeMap<String, String>,
}

fn default_note() -> String {
    String::new()
}

fn main() {}
