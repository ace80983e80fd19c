//! The routes of a bus with upcasters: each event name's handlers, those
//! of newer versions included, and the decoding of an event for each
//! version they take (see [`crate::upcast`]).

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{BusError, Route};
use crate::envelope::{EventId, SharedEvent};
use crate::error::DecodeError;
use crate::handler::HandlerEntry;
use crate::name::EventName;
use crate::registry::{EventType, EventTypes};
use crate::upcast::{Chain, Chains, Versions};

/// The routes of a bus: one per event name that has handlers, including
/// the older names whose events are upcast to newer handlers.
pub(crate) type Routes = HashMap<&'static str, Route, foldhash::fast::RandomState>;

/// How a route with handlers of several versions decodes its events: one
/// decoding per event type its handlers take.
pub(crate) struct RouteVersions {
    groups: Vec<Group>,
}

enum Group {
    /// The handlers of the route's own type.
    Native(&'static EventType),
    /// Handlers of a newer type, reached through a chain.
    Upcast(Chain),
}

impl RouteVersions {
    fn decode(
        &self,
        id: &EventId,
        occurred_on: DateTime<Utc>,
        attributes: &str,
    ) -> Result<SharedEvent, DecodeError> {
        let one = |group: &Group| match group {
            Group::Native(ty) => ty.decode_parts(id.clone(), occurred_on, attributes),
            Group::Upcast(chain) => chain.decode(id.clone(), occurred_on, attributes),
        };
        match self.groups.as_slice() {
            [only] => one(only),
            groups => {
                let decoded = groups.iter().map(one).collect::<Result<Vec<_>, _>>()?;
                Ok(Arc::new(Versions(decoded)) as SharedEvent)
            }
        }
    }

    /// A published event of the route's own type, with its newer versions
    /// for the handlers that take them. A version that cannot be made is
    /// logged and left out: its handlers then fail, saying so.
    fn published(&self, event: SharedEvent) -> SharedEvent {
        let mut decoded = Vec::with_capacity(self.groups.len());
        for group in &self.groups {
            match group {
                Group::Native(_) => decoded.push(Arc::clone(&event)),
                Group::Upcast(chain) => {
                    let upcast = match chain.encode_source(&event) {
                        Some(Ok((json, id, occurred_on))) => chain.decode(id, occurred_on, &json),
                        Some(Err(e)) => Err(DecodeError::new(None, "attributes", e.to_string())),
                        None => continue,
                    };
                    match upcast {
                        Ok(event) => decoded.push(event),
                        Err(error) => {
                            tracing::error!(%error, "a published event could not be upcast for newer handlers")
                        }
                    }
                }
            }
        }
        Arc::new(Versions(decoded))
    }
}

impl Route {
    /// Decodes a received event of this route's name for its handlers;
    /// `None` when no type of this name is known.
    pub(crate) fn decode_parts(
        &self,
        id: &EventId,
        occurred_on: DateTime<Utc>,
        attributes: &str,
    ) -> Option<Result<SharedEvent, DecodeError>> {
        match &self.versions {
            None => self
                .event_type
                .map(|ty| ty.decode_parts(id.clone(), occurred_on, attributes)),
            Some(versions) => Some(versions.decode(id, occurred_on, attributes)),
        }
    }

    /// A published event (of this route's own type) as its handlers take
    /// it: itself, or with its newer versions when some handlers take them.
    pub(crate) fn published(&self, event: SharedEvent) -> SharedEvent {
        match &self.versions {
            None => event,
            Some(versions) => versions.published(event),
        }
    }
}

/// The routes of `handlers` (by event name, each handler under its own
/// type's name): each newer type's handlers are added to the route of
/// every older name its upcasters reach. A command with more than one
/// handler (upcast ones included) is refused.
pub(crate) fn routes(
    handlers: HashMap<&'static str, Vec<HandlerEntry>>,
    types: &EventTypes,
) -> Result<Routes, BusError> {
    let chains = Chains::discover(types.names())?;
    // Older name → (handlers, chain) of each newer type, in a stable order.
    let mut upcast: HashMap<&'static str, Vec<(Vec<HandlerEntry>, Chain)>> = HashMap::new();
    let mut natives: Vec<_> = handlers.iter().collect();
    natives.sort_by_key(|(name, _)| **name);
    for (_, list) in natives {
        let Some(target) = list.first().map(|h| h.event_type_id) else {
            continue;
        };
        for (older, chain) in chains.older(target) {
            upcast
                .entry(older)
                .or_default()
                .push((list.clone(), chain.clone()));
        }
    }
    let mut names: Vec<&'static str> = handlers.keys().copied().collect();
    names.extend(upcast.keys().copied().filter(|n| !handlers.contains_key(n)));
    let mut native = handlers;
    let mut routes = Routes::default();
    for name in names {
        let event_type = types.get(name);
        let mut list = native.remove(name).unwrap_or_default();
        let route = match upcast.remove(name) {
            None => Route::new(list, event_type),
            Some(newer) => {
                let mut groups = Vec::new();
                if !list.is_empty() {
                    match event_type {
                        Some(ty) => groups.push(Group::Native(ty)),
                        // No type to decode the older name with: as a route
                        // without upcasters, it cannot be decoded.
                        None => {
                            routes.insert(name, Route::new(list, None));
                            continue;
                        }
                    }
                }
                for (handlers, chain) in newer {
                    list.extend(handlers);
                    groups.push(Group::Upcast(chain));
                }
                let mut route = Route::new(list, event_type);
                route.versions = Some(Arc::new(RouteVersions { groups }));
                route
            }
        };
        one_handler_per_command(name, &route)?;
        routes.insert(name, route);
    }
    Ok(routes)
}

fn one_handler_per_command(name: &'static str, route: &Route) -> Result<(), BusError> {
    let is_command = EventName::parse(name).is_ok_and(|n| n.is_command());
    match &route.handlers[..] {
        [first, second, ..] if is_command => Err(BusError::DuplicateCommandHandler {
            command: name,
            first: first.name.clone().into_owned(),
            second: second.name.clone().into_owned(),
        }),
        _ => Ok(()),
    }
}
