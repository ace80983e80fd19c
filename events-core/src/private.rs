//! Paths used by the code `#[derive(DomainEvent)]` and `#[handler]` expand
//! to, and items the workspace's crates share. Not public API: it may change
//! in any release.

pub use inventory;
pub use serde;

pub use serde_json;

pub use crate::attributes::{read_json, read_map, Key, Position};
pub use crate::handler::private::*;
pub use crate::registry::EventType;
pub use crate::store::time::{parse_store_time, store_time};
pub use crate::upcast::private::*;

/// `error` and the causes it does not already say, on one line (`a: b: c`,
/// [`write_chain`](crate::error::write_chain)'s alternate form): for logs and
/// messages that embed an error whose `Display` leaves its source out.
pub fn one_line(error: &dyn std::error::Error) -> String {
    crate::error::one_line(error)
}

/// The current time at the precision events keep: microseconds, UTC.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    crate::envelope::now()
}

use std::marker::PhantomData;

use serde::de::{DeserializeOwned, MapAccess};
use serde::ser::SerializeMap;
use serde::Serialize;

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

/// What a field type needs to travel as an attribute: serde's `Serialize`
/// and `Deserialize`, as one trait whose message says so at the field.
#[diagnostic::on_unimplemented(
    message = "the field type `{Self}` cannot be an event attribute: it needs serde's `Serialize` and `Deserialize`",
    label = "needs `Serialize` and `Deserialize`",
    note = "derive them on your type: `#[derive(serde::Serialize, serde::Deserialize)]`, with `serde = {{ version = \"1\", features = [\"derive\"] }}` in your Cargo.toml; in a `Vec`, an `Option` or a map, the item type needs them",
    note = "for a type of another crate, enable that crate's `serde` feature or hold a serializable form of it; mark a field that is not sent `#[event(skip)]`"
)]
pub trait AttributeValue: Serialize + DeserializeOwned {}

// Reporting this impl's own bounds would name serde's traits one by one
// instead of the field type's one need.
#[diagnostic::do_not_recommend]
impl<T: Serialize + DeserializeOwned> AttributeValue for T {}

/// The one check of a field's type, called once per sent field with the
/// field type's span: the only error a type without serde's traits gives.
pub fn attribute_type<T: AttributeValue>() {}

/// A field of type `T`, read and written through [`SerdeField`] when `T`
/// has serde's traits, else through [`NotSerdeField`], which compiles
/// without them (autoref specialization): the error is then the one of
/// [`attribute_type`], not one per use. The methods carry the `__events_`
/// prefix so no trait of the user's scope can make a call ambiguous.
pub struct Field<T>(PhantomData<fn() -> T>);

impl<T> Field<T> {
    /// The field of type `T`.
    #[must_use]
    pub const fn new() -> Self {
        Field(PhantomData)
    }
}

impl<T> Default for Field<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// Reading and writing a field whose type has serde's traits.
pub trait SerdeField<T> {
    /// Writes `value` as the map entry `field`.
    fn __events_write<M: SerializeMap>(
        &self,
        map: &mut M,
        field: &'static str,
        value: &T,
    ) -> Result<(), M::Error>;

    /// Reads the value of the map entry `field`, recording in `at` the
    /// attribute and, if the read fails, the path inside its value
    /// (`lines[2].quantity`).
    fn __events_read<'de, M: MapAccess<'de>>(
        &self,
        map: &mut M,
        at: &mut Position,
        field: &'static str,
    ) -> Result<T, M::Error>;

    /// The value of an absent attribute (`None` for an `Option`), if the
    /// type has one.
    fn __events_absent(&self) -> Option<T>;
}

impl<T: Serialize + DeserializeOwned> SerdeField<T> for Field<T> {
    fn __events_write<M: SerializeMap>(
        &self,
        map: &mut M,
        field: &'static str,
        value: &T,
    ) -> Result<(), M::Error> {
        map.serialize_entry(field, value)
    }

    fn __events_read<'de, M: MapAccess<'de>>(
        &self,
        map: &mut M,
        at: &mut Position,
        field: &'static str,
    ) -> Result<T, M::Error> {
        at.enter(field);
        match map.next_value::<T>() {
            Ok(value) => {
                at.leave();
                Ok(value)
            }
            Err(e) => {
                at.failed(replay::<T>);
                Err(e)
            }
        }
    }

    fn __events_absent(&self) -> Option<T> {
        T::deserialize(serde::de::value::UnitDeserializer::<serde::de::value::Error>::new()).ok()
    }
}

/// The same methods for a field type without serde's traits, so that the
/// derive's bodies compile and [`attribute_type`] is the one error. Such a
/// program never builds, so these never run; they fail cleanly all the same.
pub trait NotSerdeField<T> {
    /// Fails: the type cannot be written.
    fn __events_write<M: SerializeMap>(
        &self,
        _: &mut M,
        field: &'static str,
        _: &T,
    ) -> Result<(), M::Error> {
        Err(serde::ser::Error::custom(format_args!(
            "`{field}` has a type without `Serialize`"
        )))
    }

    /// Fails: the type cannot be read.
    fn __events_read<'de, M: MapAccess<'de>>(
        &self,
        _: &mut M,
        at: &mut Position,
        field: &'static str,
    ) -> Result<T, M::Error> {
        at.enter(field);
        Err(serde::de::Error::custom("a type without `Deserialize`"))
    }

    /// No absent value.
    fn __events_absent(&self) -> Option<T> {
        None
    }
}

impl<T> NotSerdeField<T> for &Field<T> {}

/// Reads `value` again as a `T` through serde_path_to_error's adapter,
/// after reading it as a `T` failed: the path to the value at fault.
fn replay<T: DeserializeOwned>(value: &serde_json::Value) -> Option<serde_path_to_error::Path> {
    let mut track = serde_path_to_error::Track::new();
    match T::deserialize(serde_path_to_error::Deserializer::new(value, &mut track)) {
        Ok(_) => None,
        Err(_) => Some(track.path()),
    }
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
