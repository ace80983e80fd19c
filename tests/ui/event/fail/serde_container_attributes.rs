// `#[serde(...)]` on an event struct is refused, with the `#[event(...)]`
// way where there is one.
use events_core::DomainEvent;
use serde::{Deserialize, Serialize};

#[derive(DomainEvent, Serialize, Deserialize, Debug, Clone)]
#[event(company = "acme", service = "shop", version = 1, resource = "cart", action = "emptied")]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CartEmptied {
    pub user_id: String,
}

#[derive(DomainEvent, Serialize, Deserialize, Debug, Clone)]
#[event(company = "acme", service = "shop", version = 1, resource = "cart", action = "filled")]
#[serde(tag = "type", rename = "cart")]
pub struct CartFilled {
    pub user_id: String,
}

fn main() {}
