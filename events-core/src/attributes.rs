//! Reading attributes in one pass, straight into the event's fields.
//!
//! The derive writes one map visitor per event
//! ([`DomainEvent::visit_attributes`]); this module runs it over JSON text
//! (`from_json`) or a `serde_json::Map` (`from_dict`) and turns failures into
//! [`DecodeError`]s that name the field at fault: the visitor records which
//! attribute it was reading when serde failed.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::DecodeError;
use crate::event::{json_kind, DomainEvent};

/// Reads an event's attributes from JSON text.
pub fn read_json<E: DomainEvent>(text: &str) -> Result<E, DecodeError> {
    let mut field = None;
    let mut de = serde_json::Deserializer::from_str(text);
    let result = if text.trim_start().starts_with('{') {
        de.deserialize_map(AttributesVisitor::<E>(&mut field, PhantomData))
            .and_then(|event| {
                de.end()?;
                Ok(event)
            })
    } else {
        // serde's visitors would also take an array: only objects count.
        return Err(DecodeError::new(
            Some(E::EVENT_NAME),
            "attributes",
            not_an_object(text, None),
        ));
    };
    result.map_err(|e| match field {
        Some(field) if e.is_data() => {
            DecodeError::new(Some(E::EVENT_NAME), field, strip_position(&e.to_string()))
        }
        _ => DecodeError::new(
            Some(E::EVENT_NAME),
            "attributes",
            not_an_object(text, Some(&e)),
        )
        .with_source(e),
    })
}

/// Reads an event's attributes from a JSON object map.
pub fn read_map<E: DomainEvent>(map: &Map<String, Value>) -> Result<E, DecodeError> {
    let mut field = None;
    E::visit_attributes(
        MapRef {
            iter: map.iter(),
            value: None,
        },
        &mut field,
    )
    .map_err(|e| {
        DecodeError::new(
            Some(E::EVENT_NAME),
            field.unwrap_or("attributes"),
            strip_position(&e.to_string()),
        )
    })
}

struct AttributesVisitor<'f, E>(&'f mut Option<&'static str>, PhantomData<fn() -> E>);

impl<'de, E: DomainEvent> Visitor<'de> for AttributesVisitor<'_, E> {
    type Value = E;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<E, M::Error> {
        E::visit_attributes(map, self.0)
    }
}

/// Walks a `&Map` as serde map input, without cloning it.
struct MapRef<'a> {
    iter: serde_json::map::Iter<'a>,
    value: Option<&'a Value>,
}

impl<'a> MapAccess<'a> for MapRef<'a> {
    type Error = serde_json::Error;

    fn next_key_seed<K: DeserializeSeed<'a>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        match self.iter.next() {
            Some((key, value)) => {
                self.value = Some(value);
                seed.deserialize(
                    de::value::BorrowedStrDeserializer::<serde_json::Error>::new(key.as_str()),
                )
                .map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'a>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, Self::Error> {
        match self.value.take() {
            Some(value) => seed.deserialize(value),
            None => Err(de::Error::custom("value requested before key")),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

/// Describes why `text` is not a readable attributes object, in the words
/// every decoding error uses ("expected a JSON object, found an array").
fn not_an_object(text: &str, error: Option<&serde_json::Error>) -> String {
    match serde_json::from_str::<Value>(text) {
        Ok(value) if !value.is_object() => {
            format!("expected a JSON object, found {}", json_kind(&value))
        }
        Err(e) => format!("malformed JSON: {e}"),
        Ok(_) => error
            .map(|e| strip_position(&e.to_string()))
            .unwrap_or_default(),
    }
}

/// Drops serde_json's " at line 1 column 5": positions inside one value's
/// text mean nothing to the reader of an error.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// An attribute name, borrowed from the input when it has no escapes.
pub struct Key<'a>(Cow<'a, str>);

impl Key<'_> {
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

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
                    while map
                        .next_entry::<de::IgnoredAny, de::IgnoredAny>()?
                        .is_some()
                    {}
                    Ok(Check)
                }
            }
            deserializer.deserialize_map(V)
        }
    }
    if !text.trim_start().starts_with('{') {
        return Err(DecodeError::new(
            None,
            "attributes",
            not_an_object(text, None),
        ));
    }
    serde_json::from_str::<Check>(text)
        .map(|_| ())
        .map_err(|e| {
            DecodeError::new(None, "attributes", not_an_object(text, Some(&e))).with_source(e)
        })
}
