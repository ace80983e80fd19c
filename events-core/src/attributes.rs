//! Reading attributes without building a JSON tree first.
//!
//! [`RawAttributes`] splits the JSON text of an attributes object into keys
//! and the raw text of each value; the derive's code then deserializes each
//! field straight from its text. A `serde_json::Map` is a source too, for
//! `from_dict`.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeOwned, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::error::DecodeError;

/// Something the derive's generated code reads attributes from.
pub trait AttributeSource {
    /// The attribute `key` as a `T`: `None` when absent, `Err(message)` when
    /// present but not a `T`.
    fn read<T: DeserializeOwned>(&self, key: &str) -> Option<Result<T, String>>;
}

impl AttributeSource for Map<String, Value> {
    fn read<T: DeserializeOwned>(&self, key: &str) -> Option<Result<T, String>> {
        self.get(key).map(|value| T::deserialize(value).map_err(|e| e.to_string()))
    }
}

/// The attributes object of an event, as keys and raw value text.
#[derive(Debug)]
pub struct RawAttributes<'a> {
    entries: Vec<(Cow<'a, str>, &'a RawValue)>,
}

impl<'a> RawAttributes<'a> {
    /// Splits `text`, which must be a JSON object.
    pub fn parse(text: &'a str) -> Result<Self, DecodeError> {
        serde_json::from_str::<RawAttributes<'a>>(text).map_err(|e| {
            DecodeError::new(None, "attributes", not_an_object(text, &e)).with_source(e)
        })
    }
}

/// Describes why `text` is not an attributes object, in the words every
/// decoding error uses ("expected a JSON object, found an array").
fn not_an_object(text: &str, error: &serde_json::Error) -> String {
    if !error.is_data() {
        return format!("malformed JSON: {error}");
    }
    match serde_json::from_str::<Value>(text) {
        Ok(value) if !value.is_object() => {
            format!("expected a JSON object, found {}", crate::event::json_kind(&value))
        }
        _ => strip_position(&error.to_string()).to_owned(),
    }
}

impl AttributeSource for RawAttributes<'_> {
    fn read<T: DeserializeOwned>(&self, key: &str) -> Option<Result<T, String>> {
        // The last duplicate wins, as in `serde_json::Map`.
        let (_, raw) = self.entries.iter().rev().find(|(k, _)| k == key)?;
        Some(serde_json::from_str(raw.get()).map_err(|e| strip_position(&e.to_string()).to_owned()))
    }
}

/// Drops serde_json's " at line 1 column 5": positions inside one value's
/// text mean nothing to the reader of an error.
fn strip_position(message: &str) -> &str {
    match message.rfind(" at line ") {
        Some(i) => &message[..i],
        None => message,
    }
}

struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an attribute name")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

impl<'de> Deserialize<'de> for RawAttributes<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;
        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = RawAttributes<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some((Key(key), value)) = map.next_entry::<Key<'de>, &'de RawValue>()? {
                    entries.push((key, value));
                }
                Ok(RawAttributes { entries })
            }
        }
        deserializer.deserialize_map(ObjectVisitor)
    }
}

/// Checks that JSON text is an object, without keeping anything.
pub(crate) fn check_object(text: &str) -> Result<(), DecodeError> {
    struct Check;
    impl<'de> Deserialize<'de> for Check {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Check;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a JSON object")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Check, A::Error> {
                    while map.next_entry::<de::IgnoredAny, de::IgnoredAny>()?.is_some() {}
                    Ok(Check)
                }
            }
            deserializer.deserialize_map(V)
        }
    }
    serde_json::from_str::<Check>(text)
        .map(|_| ())
        .map_err(|e| DecodeError::new(None, "attributes", not_an_object(text, &e)).with_source(e))
}
