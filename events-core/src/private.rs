//! Paths used by the code `#[derive(DomainEvent)]` and `#[handler]` expand
//! to. Not public API: it may change in any release.

pub use inventory;
pub use serde;
pub use serde_json;

pub use crate::handler::private::*;
pub use crate::attributes::AttributeSource;
pub use crate::registry::EventType;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::DecodeError;

/// Reads one attribute; a missing attribute is read as `null`, so `Option`
/// fields may be absent, and every other type reports it as missing.
pub fn field<T: DeserializeOwned, S: AttributeSource + ?Sized>(
    attributes: &S,
    event: &'static str,
    key: &'static str,
) -> Result<T, DecodeError> {
    match attributes.read::<T>(key) {
        Some(Ok(value)) => Ok(value),
        Some(Err(problem)) => Err(invalid::<T>(event, key, problem)),
        None => T::deserialize(&Value::Null).map_err(|_| missing::<T>(event, key)),
    }
}

/// Reads one attribute, or `default()` when it is absent.
pub fn field_or<T: DeserializeOwned, S: AttributeSource + ?Sized>(
    attributes: &S,
    event: &'static str,
    key: &'static str,
    default: fn() -> T,
) -> Result<T, DecodeError> {
    match attributes.read::<T>(key) {
        Some(Ok(value)) => Ok(value),
        Some(Err(problem)) => Err(invalid::<T>(event, key, problem)),
        None => Ok(default()),
    }
}

fn missing<T>(event: &'static str, key: &'static str) -> DecodeError {
    DecodeError::new(
        Some(event),
        key,
        format!("missing: expected {}", short_type_name::<T>()),
    )
}

#[cold]
fn invalid<T>(event: &'static str, key: &'static str, problem: String) -> DecodeError {
    let problem = if problem.contains("expected") {
        problem
    } else {
        format!("{problem} (expected {})", short_type_name::<T>())
    };
    DecodeError::new(Some(event), key, problem)
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
