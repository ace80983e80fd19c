//! The [`DomainEvent`] trait and the identity every event carries.

use std::fmt;

use serde::de::MapAccess;
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use crate::attributes::{read_json, read_map, Position, ReadAttributes};
use crate::error::{DecodeError, EncodeError};
use crate::name::EventName;

/// A domain event: a fact that happened, with a validated name and attributes.
///
/// Implement it with `#[derive(DomainEvent)]`; the derive checks the name's
/// rules (SPEC §2) while your crate compiles and writes the attribute
/// (de)serialization without requiring serde derives on your struct. Only
/// `#[event(...)]` options shape the attributes: `#[serde(...)]` on an event
/// is a compile error naming the `#[event(...)]` option to use instead.
///
/// ```
/// use events_core::DomainEvent;
///
/// #[derive(DomainEvent, Debug, PartialEq)]
/// #[event(company = "testclean", service = "api", version = 1, resource = "company", action = "created")]
/// struct CompanyCreated {
///     company_name: String,
/// }
///
/// assert_eq!(CompanyCreated::EVENT_NAME, "testclean.api.1.event.company.created");
/// let event = CompanyCreated { company_name: "Acme".into() };
/// let dict = event.to_dict().unwrap();
/// assert_eq!(dict["company_name"], "Acme");
/// assert_eq!(CompanyCreated::from_dict(&dict).unwrap(), event);
/// ```
///
/// # The derive
///
/// [`#[derive(DomainEvent)]`](derive@crate::DomainEvent) documents the keys
/// of `#[event(...)]` (company, service, version, resource, action; the
/// naming rules of SPEC §2, with the irregular past forms in
/// [`IRREGULAR_PAST`](crate::name::IRREGULAR_PAST)), the field options and
/// what it generates. Every bad attribute is reported at once, at its value,
/// with the rule and a corrected example. Two types claiming one name fail
/// when the bus is built.
///
/// ```compile_fail
/// # use events_core::DomainEvent;
/// #[derive(DomainEvent)]
/// #[event(company = "acme", service = "billing", version = "1", resource = "invoice", action = "paid")]
/// struct InvoicePaid; // error: `version` must be an integer literal, not a string: write `version = 1`
/// ```
///
/// ```compile_fail
/// # use events_core::DomainEvent;
/// #[derive(DomainEvent)]
/// #[event(company = "Acme", service = "billing", version = 1, resource = "invoice", action = "pay")]
/// struct InvoicePaid; // two errors: `company` starts with `A`; `pay` is not in the past tense
/// ```
///
/// A type that does not derive it cannot be published:
///
/// ```compile_fail
/// struct NotAnEvent;
/// fn takes<E: events_core::DomainEvent>() {}
/// takes::<NotAnEvent>();
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a domain event",
    label = "not a domain event",
    note = "an event is a struct of your crate with `#[derive(DomainEvent)]` and `#[event(company = \"..\", service = \"..\", version = 1, resource = \"..\", action = \"..\")]`",
    note = "a type of another crate (such as `String`) cannot be an event itself: declare an event struct with a field of that type"
)]
pub trait DomainEvent: Sized + Send + Sync + 'static {
    /// The full event name, e.g. `testclean.api.1.event.company.created`.
    const EVENT_NAME: &'static str;

    /// The parts of [`Self::EVENT_NAME`].
    const NAME: EventName<'static>;

    /// Writes the attributes as one map (the derive writes one entry per
    /// field, under its wire name).
    ///
    /// # Errors
    ///
    /// The serializer's (a field whose `Serialize` fails, such as a map
    /// with non-string keys for JSON).
    fn serialize_attributes<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error>;

    /// Reads the attributes from a serde map, recording in `at` the
    /// attribute being read (and the path inside its value), so an error can
    /// name it. The derive writes it; call [`Self::from_dict`] or
    /// [`Self::from_json`] instead.
    #[doc(hidden)]
    fn visit_attributes<'de, M: MapAccess<'de>>(
        map: M,
        at: &mut Position,
    ) -> Result<Self, M::Error>;

    /// Rebuilds the event from its attributes object.
    ///
    /// Errors name the event, the field and what was expected; unknown keys
    /// are ignored, so producers may add attributes without breaking readers.
    ///
    /// # Errors
    ///
    /// A [`DecodeError`] naming the attribute at fault (down to the value
    /// inside it) when one is missing or of another type.
    fn from_dict(attributes: &Map<String, Value>) -> Result<Self, DecodeError> {
        read_map(attributes)
    }

    /// The attributes as a JSON object map.
    ///
    /// # Errors
    ///
    /// An [`EncodeError`] when serde cannot write a field as JSON (a map
    /// whose keys are not strings) or the attributes are not an object.
    fn to_dict(&self) -> Result<Map<String, Value>, EncodeError> {
        match serde_json::to_value(Attributes(self)) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(other) => Err(EncodeError::new(
                Self::EVENT_NAME,
                serde::ser::Error::custom(format_args!(
                    "attributes serialized to {other}, not to an object"
                )),
            )),
            Err(e) => Err(EncodeError::new(Self::EVENT_NAME, e)),
        }
    }

    /// The attributes as JSON text (what the wire's `attributes` holds).
    ///
    /// # Errors
    ///
    /// An [`EncodeError`] when serde cannot write a field as JSON.
    fn to_json(&self) -> Result<String, EncodeError> {
        serde_json::to_string(&Attributes(self)).map_err(|e| EncodeError::new(Self::EVENT_NAME, e))
    }

    /// Rebuilds the event from the JSON text of its attributes object, in
    /// one pass.
    ///
    /// # Errors
    ///
    /// A [`DecodeError`] naming the attribute at fault when `attributes` is
    /// not a JSON object, or an attribute is missing or of another type.
    fn from_json(attributes: &str) -> Result<Self, DecodeError> {
        read_json(attributes)
    }
}

impl<E: DomainEvent> ReadAttributes for E {
    fn event_name() -> &'static str {
        E::EVENT_NAME
    }

    fn visit<'de, M: MapAccess<'de>>(map: M, at: &mut Position) -> Result<Self, M::Error> {
        E::visit_attributes(map, at)
    }
}

/// Serializes an event's attributes with any serde serializer.
///
/// ```
/// # use events_core::{Attributes, DomainEvent};
/// # #[derive(DomainEvent)]
/// # #[event(company = "acme", service = "shop", version = 1, resource = "order", action = "placed")]
/// # struct OrderPlaced { total: u64 }
/// let json = serde_json::to_string(&Attributes(&OrderPlaced { total: 10 })).unwrap();
/// assert_eq!(json, r#"{"total":10}"#);
/// ```
pub struct Attributes<'a, E>(pub &'a E);

impl<E: DomainEvent> Serialize for Attributes<'_, E> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize_attributes(serializer)
    }
}

impl<E: DomainEvent> fmt::Debug for Attributes<'_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Attributes({})", E::EVENT_NAME)
    }
}
