//! The envelope: an event with its identity, typed ([`Event`]), of any type
//! in process ([`AnyEvent`]), or serialized for transport and storage
//! ([`RawEvent`]).

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use chrono::{DateTime, SubsecRound, Utc};
use serde_json::{Map, Value};

use crate::attributes::parse_attributes;
use crate::error::{DecodeError, EncodeError};
use crate::event::DomainEvent;

/// The unique id of one event instance.
///
/// Generated ids are UUIDs (version 7, so they sort by creation time). Ids
/// received from other producers are kept exactly as sent, in any string form
/// (Python's `package-events-bus` writes 32 hex digits without dashes).
/// Cloning is cheap: the text is shared.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId(Arc<str>);

impl EventId {
    /// A new unique id.
    pub fn new() -> Self {
        EventId(Arc::from(
            uuid::Uuid::now_v7()
                .hyphenated()
                .encode_lower(&mut uuid::Uuid::encode_buffer()) as &str,
        ))
    }

    /// The id as sent on the wire.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl serde::Serialize for EventId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for EventId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(EventId::from)
    }
}

impl Default for EventId {
    fn default() -> Self {
        EventId::new()
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventId({})", self.0)
    }
}

impl From<String> for EventId {
    fn from(id: String) -> Self {
        EventId(Arc::from(id))
    }
}

impl From<&str> for EventId {
    fn from(id: &str) -> Self {
        EventId(Arc::from(id))
    }
}

impl From<uuid::Uuid> for EventId {
    fn from(id: uuid::Uuid) -> Self {
        EventId(Arc::from(
            id.hyphenated()
                .encode_lower(&mut uuid::Uuid::encode_buffer()) as &str,
        ))
    }
}

impl Borrow<str> for EventId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for EventId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// The current time at the precision events keep: microseconds, UTC.
pub(crate) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// An event with its identity: the id and `occurred_on` fixed when it was
/// created, which never change afterwards (not on publish, failover, replay,
/// or on the way through EventBridge and SQS).
///
/// `Event<E>` dereferences to `E`, so handlers read attributes directly.
///
/// ```
/// # use events_core::{DomainEvent, Event};
/// # #[derive(DomainEvent, Debug, Clone, PartialEq)]
/// # #[event(company = "acme", service = "shop", version = 1, resource = "order", action = "placed")]
/// # struct OrderPlaced { total: u64 }
/// let event = Event::new(OrderPlaced { total: 10 });
/// assert_eq!(event.total, 10);
/// assert_eq!(event.name(), "acme.shop.1.event.order.placed");
///
/// // Rebuild a received event with its identity, as the seed's `from_dict`.
/// let dict = event.to_dict().unwrap();
/// let again = Event::<OrderPlaced>::from_dict(event.id().clone(), event.occurred_on(), &dict).unwrap();
/// assert_eq!(again, event);
/// ```
#[derive(Clone)]
pub struct Event<E> {
    id: EventId,
    occurred_on: DateTime<Utc>,
    payload: E,
    /// The name it was published under, when that is an older version
    /// upcast into `E` (see [`crate::upcast`]).
    published_as: Option<&'static str>,
}

// Two events are equal when their identity and attributes are: the name an
// event was published under is where it came from, not what it is.
impl<E: PartialEq> PartialEq for Event<E> {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
            && self.occurred_on == other.occurred_on
            && self.payload == other.payload
    }
}

impl<E: Eq> Eq for Event<E> {}

impl<E> Event<E> {
    /// Wraps `payload` with a new id and the current time.
    pub fn new(payload: E) -> Self {
        Event {
            id: EventId::new(),
            occurred_on: now(),
            payload,
            published_as: None,
        }
    }

    /// Wraps `payload` with a known identity (a received or stored event).
    ///
    /// `occurred_on` is kept to the microsecond, the precision of the wire.
    pub fn with_identity(id: impl Into<EventId>, occurred_on: DateTime<Utc>, payload: E) -> Self {
        Event {
            id: id.into(),
            occurred_on: occurred_on.trunc_subsecs(6),
            payload,
            published_as: None,
        }
    }

    /// Marks the event as published under `name`, an older version it was
    /// upcast from.
    pub(crate) fn published_under(mut self, name: &'static str) -> Self {
        self.published_as = Some(name);
        self
    }

    /// The event's id.
    pub fn id(&self) -> &EventId {
        &self.id
    }

    /// When it happened (UTC, microseconds).
    pub fn occurred_on(&self) -> DateTime<Utc> {
        self.occurred_on
    }

    /// The event's attributes.
    pub fn payload(&self) -> &E {
        &self.payload
    }

    /// Takes the attributes out, dropping the identity.
    pub fn into_payload(self) -> E {
        self.payload
    }
}

impl<E: DomainEvent> Event<E> {
    /// The full event name.
    pub fn name(&self) -> &'static str {
        E::EVENT_NAME
    }

    /// The name the event was published under: [`name`](Self::name), or
    /// the name of the older version it was upcast from (see
    /// [`crate::upcast`]), e.g. `acme.crm.1.event.company.created` for an
    /// `Event<CompanyCreatedV3>`.
    pub fn published_as(&self) -> &'static str {
        self.published_as.unwrap_or(E::EVENT_NAME)
    }

    /// Whether the event was published as an older version and upcast.
    pub fn is_upcast(&self) -> bool {
        self.published_as.is_some()
    }

    /// The attributes as a JSON object map.
    ///
    /// # Errors
    ///
    /// An [`EncodeError`] when serde cannot write the attributes as a JSON
    /// object.
    pub fn to_dict(&self) -> Result<Map<String, Value>, EncodeError> {
        self.payload.to_dict()
    }

    /// Rebuilds an event from the seed's `(event_id, occurred_on, attributes)`.
    ///
    /// # Errors
    ///
    /// A [`DecodeError`] naming the attribute at fault when `attributes` is not
    /// what `E` reads.
    pub fn from_dict(
        event_id: impl Into<EventId>,
        occurred_on: DateTime<Utc>,
        attributes: &Map<String, Value>,
    ) -> Result<Self, DecodeError> {
        Ok(Event::with_identity(
            event_id,
            occurred_on,
            E::from_dict(attributes)?,
        ))
    }
}

impl<E> Deref for Event<E> {
    type Target = E;
    fn deref(&self) -> &E {
        &self.payload
    }
}

impl<E> From<E> for Event<E>
where
    E: DomainEvent,
{
    fn from(payload: E) -> Self {
        Event::new(payload)
    }
}

impl<E: fmt::Debug> fmt::Debug for Event<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("Event");
        out.field("id", &self.id)
            .field("occurred_on", &self.occurred_on)
            .field("payload", &self.payload);
        if let Some(name) = self.published_as {
            out.field("published_as", &name);
        }
        out.finish()
    }
}

/// An event without its Rust type: what travels and what is stored.
///
/// `attributes` is the JSON text of the attributes object, kept as text so a
/// stored or forwarded event is byte-for-byte what was produced.
#[derive(Clone, PartialEq, Eq)]
pub struct RawEvent {
    /// The event's id.
    pub id: EventId,
    /// The full event name (EventBridge's `DetailType`).
    pub name: String,
    /// When it happened (UTC, microseconds).
    pub occurred_on: DateTime<Utc>,
    /// The JSON text of the attributes object.
    pub attributes: String,
    /// The trace context of the publish that produced it (the detail's
    /// `_trace`, SPEC §13): kept through the store, failover, the outbox and
    /// replay; `None` when there was none (a Python publisher, a publish
    /// outside a traced span, a build without the `otel` feature).
    pub trace: Option<crate::trace::TraceContext>,
}

impl RawEvent {
    /// Erases the type of an event, serializing its attributes.
    ///
    /// # Errors
    ///
    /// An [`EncodeError`] when serde cannot write the attributes as JSON.
    pub fn from_event<E: DomainEvent>(event: &Event<E>) -> Result<Self, EncodeError> {
        Ok(RawEvent {
            id: event.id.clone(),
            name: E::EVENT_NAME.to_owned(),
            occurred_on: event.occurred_on,
            attributes: event.payload.to_json()?,
            trace: None,
        })
    }

    /// Rebuilds the typed event; the name must be `E::EVENT_NAME`.
    ///
    /// # Errors
    ///
    /// A [`DecodeError`] when the name is not `E`'s or the attributes are not
    /// what `E` reads (naming the attribute at fault).
    pub fn decode<E: DomainEvent>(&self) -> Result<Event<E>, DecodeError> {
        if self.name != E::EVENT_NAME {
            return Err(DecodeError::new(
                Some(E::EVENT_NAME),
                "type",
                format!("expected `{}`, found `{}`", E::EVENT_NAME, self.name),
            ));
        }
        let payload = E::from_json(&self.attributes)?;
        Ok(Event::with_identity(
            self.id.clone(),
            self.occurred_on,
            payload,
        ))
    }

    /// The attributes as a JSON object map.
    ///
    /// # Errors
    ///
    /// A [`DecodeError`] when `attributes` is not the JSON text of an object.
    pub fn attributes_map(&self) -> Result<Map<String, Value>, DecodeError> {
        parse_attributes(&self.attributes).map_err(|e| e.in_event(&self.name))
    }
}

impl fmt::Debug for RawEvent {
    // The attributes may hold personal data: Debug shows their size only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawEvent")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("occurred_on", &self.occurred_on)
            .field("attributes_len", &self.attributes.len())
            .field("trace", &self.trace.as_ref().map(|t| t.traceparent()))
            .finish()
    }
}

/// A type-erased, shareable event as handlers receive it: an `Arc<Event<E>>`.
pub(crate) type SharedEvent = Arc<dyn std::any::Any + Send + Sync>;

/// An event of any type, with its identity: what an aggregate records and
/// what a batch publishes. Made from an [`Event`] or a bare event (which
/// gets its identity then).
#[derive(Clone)]
pub struct AnyEvent {
    pub(crate) id: EventId,
    pub(crate) name: &'static str,
    occurred_on: DateTime<Utc>,
    pub(crate) shared: SharedEvent,
    encode: fn(&SharedEvent) -> Option<Result<RawEvent, EncodeError>>,
}

fn encode<E: DomainEvent>(shared: &SharedEvent) -> Option<Result<RawEvent, EncodeError>> {
    shared.downcast_ref::<Event<E>>().map(RawEvent::from_event)
}

impl AnyEvent {
    /// Erases the type of `event`, keeping its identity.
    pub fn new<E: DomainEvent>(event: Event<E>) -> Self {
        AnyEvent {
            id: event.id().clone(),
            name: E::EVENT_NAME,
            occurred_on: event.occurred_on(),
            shared: Arc::new(event),
            encode: encode::<E>,
        }
    }

    /// The event's id.
    pub fn id(&self) -> &EventId {
        &self.id
    }

    /// The event's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// When it happened.
    pub fn occurred_on(&self) -> DateTime<Utc> {
        self.occurred_on
    }

    /// The typed event, if it is an `E`.
    pub fn downcast_ref<E: DomainEvent>(&self) -> Option<&Event<E>> {
        self.shared.downcast_ref::<Event<E>>()
    }

    /// Serializes it for transport or storage.
    ///
    /// # Errors
    ///
    /// An [`EncodeError`] when serde cannot write the attributes as JSON.
    pub fn to_raw(&self) -> Result<RawEvent, EncodeError> {
        match (self.encode)(&self.shared) {
            Some(result) => result,
            // `encode` is always `encode::<E>` for the `E` inside `shared`.
            None => unreachable_encode(self.name),
        }
    }
}

#[cold]
fn unreachable_encode(name: &str) -> Result<RawEvent, EncodeError> {
    Err(EncodeError::new(
        name,
        serde::ser::Error::custom("internal error: event type and encoder disagree"),
    ))
}

impl<E: DomainEvent> From<Event<E>> for AnyEvent {
    fn from(event: Event<E>) -> Self {
        AnyEvent::new(event)
    }
}

/// A bare event gets its id and `occurred_on` now, as with
/// [`EventBus::publish`](crate::EventBus::publish), so `publish_batch` takes
/// bare events too.
impl<E: DomainEvent> From<E> for AnyEvent {
    fn from(payload: E) -> Self {
        AnyEvent::new(Event::new(payload))
    }
}

impl fmt::Debug for AnyEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnyEvent")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("occurred_on", &self.occurred_on)
            .finish()
    }
}
