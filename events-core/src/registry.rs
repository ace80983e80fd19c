//! What the program declares: event types and handlers, found through
//! `inventory` at start-up or registered explicitly.
//!
//! `inventory` only sees items of crates that are linked into the program. A
//! crate of handlers that nothing references is dropped by the linker; keep it
//! with `use my_handlers as _;` in `main.rs`. When discovery finds no handler
//! at all, building the bus logs a warning saying so.

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::envelope::{Event, EventId, SharedEvent};
use crate::error::DecodeError;
use crate::event::DomainEvent;

/// One `#[derive(DomainEvent)]` type, registered by the derive.
#[derive(Debug)]
pub struct EventType {
    /// The full event name.
    pub name: &'static str,
    type_name: fn() -> &'static str,
    type_id: fn() -> TypeId,
    decode_parts: DecodeParts,
}

/// Decodes an event of a known name from its identity and the JSON text of
/// its attributes.
type DecodeParts = fn(EventId, DateTime<Utc>, &str) -> Result<SharedEvent, DecodeError>;

impl EventType {
    /// The registration of `E` (used by the derive's generated code).
    pub const fn of<E: DomainEvent>() -> Self {
        EventType {
            name: E::EVENT_NAME,
            type_name: std::any::type_name::<E>,
            type_id: TypeId::of::<E>,
            decode_parts: decode_parts::<E>,
        }
    }

    /// The Rust type's name (for error messages).
    pub fn type_name(&self) -> &'static str {
        (self.type_name)()
    }

    /// The Rust type's id.
    pub fn type_id(&self) -> TypeId {
        (self.type_id)()
    }

    /// Decodes an event of this type's name from its parts: what
    /// [`RawEvent::decode`](crate::RawEvent::decode) does once the name is checked.
    pub(crate) fn decode_parts(
        &self,
        id: EventId,
        occurred_on: DateTime<Utc>,
        attributes: &str,
    ) -> Result<SharedEvent, DecodeError> {
        (self.decode_parts)(id, occurred_on, attributes)
    }
}

fn decode_parts<E: DomainEvent>(
    id: EventId,
    occurred_on: DateTime<Utc>,
    attributes: &str,
) -> Result<SharedEvent, DecodeError> {
    let payload = E::from_json(attributes)?;
    Ok(Arc::new(Event::with_identity(id, occurred_on, payload)) as SharedEvent)
}

inventory::collect!(EventType);

/// Every event type linked into the program.
pub fn event_types() -> impl Iterator<Item = &'static EventType> {
    inventory::iter::<EventType>.into_iter()
}

/// Two Rust types claim one event name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "event name `{name}` is claimed by two types, `{first}` and `{second}`; \
     give one of them another `resource`, `action` or `version`"
)]
pub struct DuplicateEventName {
    /// The contested name.
    pub name: &'static str,
    /// One type.
    pub first: &'static str,
    /// The other.
    pub second: &'static str,
}

/// Event types by name; built once per bus, refusing duplicates.
#[derive(Debug, Default, Clone)]
pub(crate) struct EventTypes {
    /// Looked up on every received event: hashed with foldhash, like the
    /// bus's handlers.
    by_name: HashMap<
        &'static str,
        (&'static str, TypeId, Option<&'static EventType>),
        foldhash::fast::RandomState,
    >,
}

impl EventTypes {
    pub(crate) fn discover() -> Result<Self, DuplicateEventName> {
        let mut types = EventTypes::default();
        for ty in event_types() {
            types.insert(ty.name, ty.type_name(), ty.type_id(), Some(ty))?;
        }
        Ok(types)
    }

    pub(crate) fn insert(
        &mut self,
        name: &'static str,
        type_name: &'static str,
        type_id: TypeId,
        registration: Option<&'static EventType>,
    ) -> Result<(), DuplicateEventName> {
        match self.by_name.get(name) {
            Some((first, id, _)) if *id != type_id => Err(DuplicateEventName {
                name,
                first,
                second: type_name,
            }),
            Some(_) => Ok(()),
            None => {
                self.by_name
                    .insert(name, (type_name, type_id, registration));
                Ok(())
            }
        }
    }

    pub(crate) fn get(&self, name: &str) -> Option<&'static EventType> {
        self.by_name.get(name).and_then(|(_, _, reg)| *reg)
    }

    /// Every known name with its Rust type's name.
    pub(crate) fn names(&self) -> impl Iterator<Item = (&'static str, &'static str)> + '_ {
        self.by_name
            .iter()
            .map(|(name, (type_name, _, _))| (*name, *type_name))
    }

    pub(crate) fn len(&self) -> usize {
        self.by_name.len()
    }
}
