//! Recording events in an aggregate, to publish after it was saved.
//!
//! ```
//! use events_core::{DomainEvent, Recorder};
//! # #[derive(DomainEvent, Debug, Clone)]
//! # #[event(company = "testclean", service = "api", version = 1, resource = "company", action = "created")]
//! # pub struct CompanyCreated { pub company_name: String }
//!
//! pub struct CompanyAggregate {
//!     pub name: String,
//!     events: Recorder,
//! }
//!
//! impl CompanyAggregate {
//!     pub fn create(name: &str) -> Self {
//!         let mut company = CompanyAggregate { name: name.to_owned(), events: Recorder::new() };
//!         company.events.record(CompanyCreated { company_name: name.to_owned() });
//!         company
//!     }
//! }
//!
//! let company = CompanyAggregate::create("Acme");
//! assert_eq!(company.events.len(), 1);
//! assert_eq!(company.events.events()[0].name(), "testclean.api.1.event.company.created");
//! ```
//!
//! Publish with [`EventBus::publish_recorded`](crate::EventBus::publish_recorded):
//! the recorder is emptied only of the events that were published (or stored
//! for later delivery), never before.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::envelope::{Event, EventId, RawEvent};
use crate::error::EncodeError;
use crate::event::DomainEvent;
use crate::registry::SharedEvent;

/// An event of any type, with its identity: what an aggregate records and
/// what a batch publishes.
#[derive(Clone)]
pub struct AnyEvent {
    id: EventId,
    name: &'static str,
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

impl fmt::Debug for AnyEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnyEvent")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("occurred_on", &self.occurred_on)
            .finish()
    }
}

/// The events an aggregate recorded and has not yet published.
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    events: Vec<AnyEvent>,
}

impl Recorder {
    /// An empty recorder.
    pub fn new() -> Self {
        Recorder::default()
    }

    /// Records an event; its id and `occurred_on` are fixed now.
    pub fn record<E: DomainEvent>(&mut self, payload: E) -> &EventId {
        self.record_event(Event::new(payload))
    }

    /// Records an event that already has its identity.
    pub fn record_event<E: DomainEvent>(&mut self, event: Event<E>) -> &EventId {
        self.events.push(AnyEvent::new(event));
        let last = self.events.len() - 1;
        &self.events[last].id
    }

    /// The recorded events, oldest first.
    pub fn events(&self) -> &[AnyEvent] {
        &self.events
    }

    /// How many events wait.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Forgets every recorded event (the seed's `clear_events`).
    pub fn clear(&mut self) {
        self.events.clear();
    }

    /// Keeps only the events for which `keep` is true.
    pub(crate) fn retain(&mut self, keep: impl FnMut(&AnyEvent) -> bool) {
        self.events.retain(keep);
    }
}
