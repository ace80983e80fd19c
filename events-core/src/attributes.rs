//! Reading attributes in one pass, straight into the event's fields.
//!
//! The derive writes one map visitor per event
//! ([`DomainEvent::visit_attributes`](crate::DomainEvent::visit_attributes)); this module runs it over JSON text
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

/// What reading needs of an event type: its name (for errors) and the
/// derive's map visitor. Every [`DomainEvent`](crate::DomainEvent) has it
/// (event.rs); a trait of this file's own so that reading does not depend
/// on the event trait's file, which depends on it.
#[doc(hidden)]
pub trait ReadAttributes: Sized {
    /// The event's name, as errors give it.
    fn event_name() -> &'static str;

    /// [`DomainEvent::visit_attributes`](crate::DomainEvent::visit_attributes).
    fn visit<'de, M: MapAccess<'de>>(map: M, at: &mut Position) -> Result<Self, M::Error>;
}

/// Reads an event's attributes from JSON text.
pub fn read_json<E: ReadAttributes>(text: &str) -> Result<E, DecodeError> {
    let name = E::event_name();
    require_object(text, Some(name), "attributes")?;
    let mut at = Position::default();
    let mut de = serde_json::Deserializer::from_str(text);
    de.deserialize_map(AttributesVisitor::<E>(&mut at, PhantomData))
        .and_then(|event| {
            de.end()?;
            Ok(event)
        })
        .map_err(|e| {
            if !e.is_data() {
                return object_error(text, Some(name), "attributes", e);
            }
            at.locate_in_text(text);
            match at.path() {
                Some(path) => {
                    let attributes = at
                        .renamed_from
                        .and_then(|_| serde_json::from_str::<Map<String, Value>>(text).ok());
                    at.error(name, path, &e.to_string(), attributes.as_ref())
                }
                None => object_error(text, Some(name), "attributes", e),
            }
        })
}

/// Reads an event's attributes from a JSON object map.
pub fn read_map<E: ReadAttributes>(map: &Map<String, Value>) -> Result<E, DecodeError> {
    let mut at = Position::default();
    E::visit(
        MapRef {
            iter: map.iter(),
            value: None,
        },
        &mut at,
    )
    .map_err(|e| {
        at.locate(map);
        let path = at.path().unwrap_or_else(|| "attributes".to_owned());
        at.error(E::event_name(), path, &e.to_string(), Some(map))
    })
}

/// Where the attribute visitor is: the attribute it is reading and, once a
/// read failed, how to find the path inside that attribute's value
/// (`[2].quantity`). The derive's code keeps it up to date; an error names
/// [`Position::path`], e.g. `lines[2].quantity`.
///
/// Values are read at full speed, without tracking: only after a failure is
/// the failed attribute's value read again, as a `serde_json::Value`,
/// through serde_path_to_error, to find the path.
#[doc(hidden)]
#[derive(Debug, Default)]
pub struct Position {
    field: Option<&'static str>,
    replay: Option<Replay>,
    inner: Option<serde_path_to_error::Path>,
    /// The Rust name of a missing attribute sent under another wire name.
    renamed_from: Option<&'static str>,
}

/// Reads a value again as the failed attribute's type, returning the path
/// to the value at fault (`None` if it reads fine this time).
#[doc(hidden)]
pub type Replay = fn(&Value) -> Option<serde_path_to_error::Path>;

impl Position {
    /// Records that `field` is being read (or found missing).
    pub fn enter(&mut self, field: &'static str) {
        self.field = Some(field);
        self.replay = None;
        self.inner = None;
        self.renamed_from = None;
    }

    /// Records that the attribute `field` (the wire name of the Rust field
    /// `member`) is missing, so the error can say when it was sent under
    /// its Rust name instead.
    pub fn missing(&mut self, field: &'static str, member: &'static str) {
        self.enter(field);
        if member != field {
            self.renamed_from = Some(member);
        }
    }

    /// The error at `path`, from serde's `message`: a field missing deeper
    /// inside (serde's "missing field `sku`" at `lines[1]`) is reported at
    /// its own path (`lines[1].sku`: missing), as the top level ones are;
    /// a missing renamed attribute whose Rust name is in `attributes` gets a
    /// hint.
    fn error(
        &self,
        event: &str,
        mut path: String,
        message: &str,
        attributes: Option<&Map<String, Value>>,
    ) -> DecodeError {
        let mut problem = strip_position(message);
        if let Some(name) = problem
            .strip_prefix("missing field `")
            .and_then(|rest| rest.strip_suffix('`'))
        {
            path.push('.');
            path.push_str(name);
            problem = "missing".to_owned();
        }
        if let (Some(member), Some(field)) = (self.renamed_from, self.field) {
            if path == field && attributes.is_some_and(|a| a.contains_key(member)) {
                problem.push_str(&format!(
                    " (found `{member}`; this field is renamed to `{field}`)"
                ));
            }
        }
        DecodeError::new(Some(event), path, problem)
    }

    /// Records that the attribute being read was read.
    pub fn leave(&mut self) {
        self.field = None;
    }

    /// Records that reading the attribute failed; `replay` finds where.
    pub fn failed(&mut self, replay: Replay) {
        self.replay = Some(replay);
    }

    /// Finds the path inside the failed attribute's value, reading it again
    /// from `attributes` (error path only).
    fn locate(&mut self, attributes: &Map<String, Value>) {
        if let (Some(field), Some(replay)) = (self.field, self.replay.take()) {
            self.inner = attributes.get(field).and_then(replay);
        }
    }

    /// The same, from the JSON text of the attributes.
    fn locate_in_text(&mut self, text: &str) {
        if self.replay.is_some() {
            if let Ok(attributes) = serde_json::from_str::<Map<String, Value>>(text) {
                self.locate(&attributes);
            }
        }
    }

    /// The path of the value at fault: the attribute's name, followed by
    /// the path inside its value when the failure was deeper
    /// (`lines[2].quantity`, `customer.address.zip`).
    pub fn path(&self) -> Option<String> {
        let field = self.field?;
        let mut path = field.to_owned();
        if let Some(inner) = &self.inner {
            let mut segments = inner.iter().peekable();
            if segments.peek().is_some() {
                let inner = inner.to_string();
                if !inner.starts_with('[') {
                    path.push('.');
                }
                path.push_str(&inner);
            }
        }
        Some(path)
    }
}

struct AttributesVisitor<'f, E>(&'f mut Position, PhantomData<fn() -> E>);

impl<'de, E: ReadAttributes> Visitor<'de> for AttributesVisitor<'_, E> {
    type Value = E;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<E, M::Error> {
        E::visit(map, self.0)
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

/// A short name of a JSON value's kind, for error messages.
pub(crate) fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Describes why `text` is not a readable JSON object, in the words every
/// decoding error uses: "expected a JSON object, found an array",
/// "malformed JSON: …", or serde's own message (without its position) when
/// the text is an object whose content was refused.
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

/// Fails unless `text` opens a JSON object. Every reader of JSON objects
/// checks this first: serde's visitors would also take an array for a
/// struct or a map, and only objects count.
pub(crate) fn require_object(
    text: &str,
    event: Option<&str>,
    field: &str,
) -> Result<(), DecodeError> {
    if text.trim_start().starts_with('{') {
        Ok(())
    } else {
        Err(DecodeError::new(event, field, not_an_object(text, None)))
    }
}

/// The error of JSON text that serde failed to read as an object.
pub(crate) fn object_error(
    text: &str,
    event: Option<&str>,
    field: &str,
    error: serde_json::Error,
) -> DecodeError {
    DecodeError::new(event, field, not_an_object(text, Some(&error)))
}

/// Parses JSON text that must be an object into `T` (a struct or a map),
/// with the errors every decoder uses.
pub(crate) fn parse_object<'a, T: Deserialize<'a>>(
    text: &'a str,
    event: Option<&str>,
    field: &str,
) -> Result<T, DecodeError> {
    require_object(text, event, field)?;
    serde_json::from_str::<T>(text).map_err(|e| object_error(text, event, field, e))
}

/// Parses JSON text that must be an object of attributes.
pub(crate) fn parse_attributes(text: &str) -> Result<Map<String, Value>, DecodeError> {
    parse_object(text, None, "attributes")
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
    parse_object::<Check>(text, None, "attributes").map(|_| ())
}
