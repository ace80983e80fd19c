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

use crate::envelope::{AnyEvent, Event, EventId};
use crate::event::DomainEvent;

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
        self.events[last].id()
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
