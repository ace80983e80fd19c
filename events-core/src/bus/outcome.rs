//! What a publish reports: how each event was delivered and what each of its
//! handlers did.

use std::borrow::Cow;
use std::sync::Arc;

use crate::envelope::EventId;
use crate::handler::HandlerEntry;

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
    pub(super) handlers: Outcomes,
    pub(super) spawned: usize,
}

/// The outcomes of one event's handlers, in the order they ran. While every
/// handler succeeds they are the first `n` of the route's outcomes of
/// success, built once with the bus: a publish whose handlers all succeed
/// allocates no list of its own. The first failure copies them into a list.
#[derive(Clone)]
pub(super) enum Outcomes {
    /// The first `n` of `all`, each a success.
    Succeeded {
        all: Arc<[HandlerOutcome]>,
        n: usize,
    },
    /// Any outcomes.
    List(Vec<HandlerOutcome>),
}

impl Outcomes {
    /// No outcome yet, for handlers that succeed as `all` says.
    pub(super) fn succeeding(all: &Arc<[HandlerOutcome]>) -> Self {
        Outcomes::Succeeded {
            all: Arc::clone(all),
            n: 0,
        }
    }

    pub(super) fn as_slice(&self) -> &[HandlerOutcome] {
        match self {
            // `n` never passes `all.len()`: see `push`.
            Outcomes::Succeeded { all, n } => all.get(..*n).unwrap_or(all),
            Outcomes::List(list) => list,
        }
    }
}

/// What the handlers of a received event did, in the order they ran
/// ([`Received::dispatch`](crate::Received::dispatch)); a slice of
/// [`HandlerOutcome`]s. When they all succeed it shares the list the bus
/// built once for the event's handlers instead of allocating its own.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DispatchOutcome(pub(super) Outcomes);

/// Deprecated: one letter away from [`HandlerOutcome`].
#[doc(hidden)]
#[deprecated(note = "renamed `DispatchOutcome`")]
pub type HandlerOutcomes = DispatchOutcome;

impl std::ops::Deref for DispatchOutcome {
    type Target = [HandlerOutcome];

    fn deref(&self) -> &[HandlerOutcome] {
        self.0.as_slice()
    }
}

impl DispatchOutcome {
    /// The outcomes as a list of their own.
    pub fn into_vec(self) -> Vec<HandlerOutcome> {
        match self.0 {
            Outcomes::List(list) => list,
            shared => shared.as_slice().to_vec(),
        }
    }
}

/// Where a dispatch records what each handler did.
pub(super) trait Record {
    /// The next handler's outcome (`index` in the list being run).
    fn record(&mut self, index: usize, handler: &HandlerEntry, status: HandlerStatus);
}

impl Record for Vec<HandlerOutcome> {
    fn record(&mut self, _: usize, handler: &HandlerEntry, status: HandlerStatus) {
        self.push(HandlerOutcome {
            handler: handler.name.clone(),
            status,
        });
    }
}

impl Record for Outcomes {
    /// Handlers must run in the order of the route's outcomes of success
    /// (the publish path runs them all, in order).
    fn record(&mut self, index: usize, handler: &HandlerEntry, status: HandlerStatus) {
        match self {
            Outcomes::Succeeded { all, n }
                if status == HandlerStatus::Succeeded && index == *n && index < all.len() =>
            {
                debug_assert_eq!(
                    all[index].handler, handler.name,
                    "handlers out of route order"
                );
                *n += 1;
            }
            Outcomes::Succeeded { .. } => {
                let mut list = Vec::with_capacity(index + 1);
                list.extend_from_slice(self.as_slice());
                list.record(index, handler, status);
                *self = Outcomes::List(list);
            }
            Outcomes::List(list) => list.record(index, handler, status),
        }
    }
}

impl Default for Outcomes {
    fn default() -> Self {
        Outcomes::List(Vec::new())
    }
}

impl std::fmt::Debug for Outcomes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.as_slice().fmt(f)
    }
}

impl PartialEq for Outcomes {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for Outcomes {}

impl PublishOutcome {
    /// The outcome of a delivered event, before its handlers ran.
    pub(super) fn new(id: EventId, name: &'static str, delivery: Delivery) -> Self {
        PublishOutcome {
            id,
            name,
            delivery,
            handlers: Outcomes::default(),
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
        self.handlers.as_slice()
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

/// What happened to each event of a batch, in order. Iterate it (by
/// reference or by value) for each event's [`PublishOutcome`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BatchOutcome {
    /// One outcome per event.
    pub events: Vec<PublishOutcome>,
}

impl BatchOutcome {
    /// Each event's outcome, in order.
    pub fn iter(&self) -> std::slice::Iter<'_, PublishOutcome> {
        self.events.iter()
    }

    /// How many events the batch had.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether the batch was empty.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

impl IntoIterator for BatchOutcome {
    type Item = PublishOutcome;
    type IntoIter = std::vec::IntoIter<PublishOutcome>;

    fn into_iter(self) -> Self::IntoIter {
        self.events.into_iter()
    }
}

impl<'a> IntoIterator for &'a BatchOutcome {
    type Item = &'a PublishOutcome;
    type IntoIter = std::slice::Iter<'a, PublishOutcome>;

    fn into_iter(self) -> Self::IntoIter {
        self.events.iter()
    }
}
