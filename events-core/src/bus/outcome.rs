//! What a publish reports: how each event was delivered and what each of its
//! handlers did.

use std::borrow::Cow;

use crate::envelope::EventId;

/// How an event was delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Stored durably in the local store (local mode).
    Stored,
    /// Accepted by the remote bus.
    Published {
        /// The remote bus's id for the event (EventBridge's `EventId`, the
        /// `id` of the envelope a queue receives), when it gives one.
        remote_id: Option<String>,
    },
    /// Refused by the remote bus for a reason that may pass (throttling, an
    /// outage) and kept in the failover store for replay.
    FailedOver {
        /// The remote bus's error.
        error: String,
    },
    /// Refused by the remote bus for a reason that can never pass (too
    /// large, malformed, access denied) and kept in the store's dead letters,
    /// never re-sent on its own (`events dead-letters` lists it).
    DeadLettered {
        /// The remote bus's error.
        error: String,
    },
    /// Dispatched in process only: the bus has no store (tests, benchmarks).
    InProcess,
    /// The bus is disabled (`EVENT_BUS_ENABLED=false`): nothing happened.
    Disabled,
}

/// The result of one handler call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandlerStatus {
    /// It returned `Ok` (or `()`).
    Succeeded,
    /// It returned an error (its message).
    Failed(String),
    /// It panicked (the panic message).
    Panicked(String),
}

/// One handler's part in a publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerOutcome {
    /// The handler's stable name.
    pub handler: Cow<'static, str>,
    /// What happened.
    pub status: HandlerStatus,
}

/// What happened to one published event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishOutcome {
    pub(super) id: EventId,
    pub(super) name: &'static str,
    pub(super) delivery: Delivery,
    pub(super) handlers: Vec<HandlerOutcome>,
    pub(super) spawned: usize,
}

impl PublishOutcome {
    /// The outcome of a delivered event, before its handlers ran.
    pub(super) fn new(id: EventId, name: &'static str, delivery: Delivery) -> Self {
        PublishOutcome {
            id,
            name,
            delivery,
            handlers: Vec::new(),
            spawned: 0,
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

    /// How it was delivered.
    pub fn delivery(&self) -> &Delivery {
        &self.delivery
    }

    /// The handlers that ran (empty when they were spawned).
    pub fn handlers(&self) -> &[HandlerOutcome] {
        &self.handlers
    }

    /// Names of the handlers that ran.
    pub fn handler_names(&self) -> impl Iterator<Item = &str> {
        self.handlers().iter().map(|h| h.handler.as_ref())
    }

    /// The handlers that failed or panicked.
    pub fn failures(&self) -> impl Iterator<Item = &HandlerOutcome> {
        self.handlers()
            .iter()
            .filter(|h| h.status != HandlerStatus::Succeeded)
    }

    /// How many handler calls were spawned (async mode) instead of awaited.
    pub fn spawned(&self) -> usize {
        self.spawned
    }
}

/// What happened to each event of a batch, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BatchOutcome {
    /// One outcome per event.
    pub events: Vec<PublishOutcome>,
}
