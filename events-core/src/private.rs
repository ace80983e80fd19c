//! Paths used by the code `#[derive(DomainEvent)]` and `#[handler]` expand
//! to. Not public API: it may change in any release.

pub use inventory;
pub use serde;

pub use serde_json;

pub use crate::attributes::Key;
pub use crate::handler::private::*;
pub use crate::registry::EventType;

use std::marker::PhantomData;

use serde::de::{DeserializeOwned, MapAccess};

/// The error of an absent attribute whose type has no absent value.
#[cold]
pub fn missing<T, E: serde::de::Error>() -> E {
    E::custom(format_args!("missing: expected {}", short_type_name::<T>()))
}

/// `alloc::string::String` → `String`, `core::option::Option<u32>` → `Option<u32>`.
fn short_type_name<T>() -> String {
    let full = std::any::type_name::<T>();
    let mut result = String::with_capacity(full.len());
    let mut word = String::new();
    for c in full.chars() {
        if c.is_alphanumeric() || c == '_' || c == ':' {
            word.push(c);
        } else {
            result.push_str(word.rsplit("::").next().unwrap_or(&word));
            word.clear();
            result.push(c);
        }
    }
    result.push_str(word.rsplit("::").next().unwrap_or(&word));
    result
}

/// Reads one attribute's value. The derive reads every field through this
/// function and [`absent_value`], both bounded by `DeserializeOwned` alone,
/// so a field type that is not deserializable is reported once, at the field.
pub fn read_value<'de, T: DeserializeOwned, M: MapAccess<'de>>(map: &mut M) -> Result<T, M::Error> {
    map.next_value_seed(PhantomData::<T>)
}

/// The value of an absent attribute (`None` for an `Option`), if its type
/// has one.
pub fn absent_value<T: DeserializeOwned>() -> Option<T> {
    T::deserialize(serde::de::value::UnitDeserializer::<serde::de::value::Error>::new()).ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn short_names() {
        assert_eq!(super::short_type_name::<String>(), "String");
        assert_eq!(
            super::short_type_name::<Option<Vec<u8>>>(),
            "Option<Vec<u8>>"
        );
        assert_eq!(
            super::short_type_name::<std::collections::HashMap<String, i64>>(),
            "HashMap<String, i64>"
        );
    }
}
