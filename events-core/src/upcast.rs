//! Upcasting (SPEC §11): an event type built from an older version of
//! itself, so handlers of the new version receive events published under
//! every older version its chain reaches.
//!
//! # Declaring an upcaster
//!
//! Name the older type in `upcast_from` and write the conversion as a plain
//! `From` impl:
//!
//! ```
//! use events_core::{DomainEvent, Event, EventBus};
//!
//! #[derive(DomainEvent, Debug, Clone)]
//! #[event(company = "acme", service = "crm", version = 1, resource = "company", action = "created")]
//! pub struct CompanyCreatedV1 {
//!     pub name: String,
//! }
//!
//! #[derive(DomainEvent, Debug, Clone, PartialEq)]
//! #[event(company = "acme", service = "crm", version = 2, resource = "company", action = "created",
//!         upcast_from = CompanyCreatedV1)]
//! pub struct CompanyCreatedV2 {
//!     pub name: String,
//!     pub country: String,
//! }
//!
//! impl From<CompanyCreatedV1> for CompanyCreatedV2 {
//!     fn from(old: CompanyCreatedV1) -> Self {
//!         CompanyCreatedV2 { name: old.name, country: "unknown".into() }
//!     }
//! }
//!
//! #[events_core::handler]
//! async fn on_created(event: &Event<CompanyCreatedV2>) {
//!     assert_eq!(event.published_as(), "acme.crm.1.event.company.created");
//!     assert_eq!(event.country, "unknown");
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let bus = EventBus::builder().in_memory_store().build()?;
//! // A v1 body, as another service (or Python) published it, reaches the
//! // handlers of v2 upcast, with its own id and time:
//! let body = r#"{"detail-type": "acme.crm.1.event.company.created",
//!   "detail": {"id": "e-1", "type": "acme.crm.1.event.company.created",
//!              "occurred_on": "2026-01-02T03:04:05.000006+00:00",
//!              "attributes": "{\"name\": \"Acme\"}"}}"#;
//! let received = bus.receive(body)?;
//! assert_eq!(received.name(), "acme.crm.1.event.company.created");
//! let outcomes = received.dispatch().await?;
//! assert!(outcomes.iter().any(|o| o.handler.ends_with("::on_created")
//!     && o.status == events_core::HandlerStatus::Succeeded));
//! # Ok(()) }
//! ```
//!
//! A chain composes: v3 with `upcast_from = V2` and v2 with
//! `upcast_from = V1` make a handler of v3 receive v1, v2 and v3 events.
//! The handler reads the name the event was published under with
//! [`Event::published_as`](crate::Event::published_as); the id and
//! `occurred_on` are the original ones, so deduplication sees one event.
//! A handler of v1 in the same program still gets v1.
//!
//! # Rules
//!
//! Checked when your crate compiles, at the `upcast_from` path: the older
//! type has the same company, service, message type, resource and action,
//! and a lower version; one source has at most one upcaster
//! (an impl of the derive's on the source); the target implements `From<Source>`. The source
//! must be a type of the same crate (the check of the second rule is an
//! impl on it).
//!
//! Checked when the bus is built ([`UpcastError`] inside
//! [`BusError::Upcast`](crate::BusError::Upcast)): a chain that skips a
//! version the program links (v3 from v1 while v2 exists: events published
//! as v2 would not reach v3's handlers), a cycle, two upcasters from one
//! source.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::envelope::{Event, EventId, SharedEvent};
use crate::error::{DecodeError, EncodeError};
use crate::event::DomainEvent;
use crate::name::EventName;

/// The one upcaster of a source type. `#[derive(DomainEvent)]` implements
/// it for the type named in `upcast_from`, so two upcasters claiming one
/// source are a compile error ("conflicting implementations of trait
/// `UpcastSource`"): each older version is upcast into exactly one newer
/// type. The derive's, not public API.
#[doc(hidden)]
pub trait UpcastSource {
    /// The type this one is upcast into.
    type Target: DomainEvent;
}

/// The conversion of an upcaster: any `T: From<S>`. Its message, when the
/// `From` impl is missing, says what to write.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is declared `upcast_from = {S}` but does not implement `From<{S}>`",
    label = "no conversion from `{S}` into `{Self}`",
    note = "write the upcaster in plain Rust: `impl From<{S}> for {Self} {{ fn from(old: {S}) -> Self {{ .. }} }}`"
)]
#[doc(hidden)]
pub trait UpcastFrom<S>: Sized {
    /// Converts the older event.
    fn upcast(source: S) -> Self;
}

#[diagnostic::do_not_recommend]
impl<S, T: From<S>> UpcastFrom<S> for T {
    fn upcast(source: S) -> Self {
        T::from(source)
    }
}

/// A payload on its way up a chain, its type erased.
pub(crate) type Payload = Box<dyn Any + Send>;

/// One side of an upcaster: a type and its name.
#[derive(Debug, Clone, Copy)]
struct Side {
    name: &'static str,
    parts: EventName<'static>,
    type_name: fn() -> &'static str,
    type_id: fn() -> TypeId,
}

impl Side {
    const fn of<E: DomainEvent>() -> Self {
        Side {
            name: E::EVENT_NAME,
            parts: E::NAME,
            type_name: std::any::type_name::<E>,
            type_id: TypeId::of::<E>,
        }
    }
}

/// One upcaster, `Source → Target`, registered by the derive of the target
/// (through `inventory`).
pub struct Upcaster {
    target: Side,
    source: Side,
    decode_source: fn(&str) -> Result<Payload, DecodeError>,
    encode_source: fn(&SharedEvent) -> Option<Result<Encoded, EncodeError>>,
    convert: fn(Payload) -> Result<Payload, Payload>,
    wrap_target: WrapTarget,
}

/// Wraps an upcast payload as the target's `Event` with the original
/// identity and the name it was published under.
type WrapTarget = fn(Payload, EventId, DateTime<Utc>, &'static str) -> Result<SharedEvent, Payload>;

impl std::fmt::Debug for Upcaster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upcaster")
            .field("source", &self.source.name)
            .field("target", &self.target.name)
            .finish_non_exhaustive()
    }
}

inventory::collect!(Upcaster);

fn decode_payload<S: DomainEvent>(attributes: &str) -> Result<Payload, DecodeError> {
    Ok(Box::new(S::from_json(attributes)?))
}

fn encode_payload<S: DomainEvent>(shared: &SharedEvent) -> Option<Result<Encoded, EncodeError>> {
    let event = shared.downcast_ref::<Event<S>>()?;
    Some(
        event
            .payload()
            .to_json()
            .map(|json| (json, event.id().clone(), event.occurred_on())),
    )
}

/// An event's attributes as JSON, with its identity.
pub(crate) type Encoded = (String, EventId, DateTime<Utc>);

fn convert<T: DomainEvent + UpcastFrom<S>, S: DomainEvent>(
    payload: Payload,
) -> Result<Payload, Payload> {
    let source = payload.downcast::<S>()?;
    Ok(Box::new(T::upcast(*source)))
}

fn wrap<T: DomainEvent>(
    payload: Payload,
    id: EventId,
    occurred_on: DateTime<Utc>,
    published_as: &'static str,
) -> Result<SharedEvent, Payload> {
    let payload = payload.downcast::<T>()?;
    let event = Event::with_identity(id, occurred_on, *payload).published_under(published_as);
    Ok(Arc::new(event) as SharedEvent)
}

impl Upcaster {
    /// The upcaster `S → T` (used by the derive's generated code).
    #[doc(hidden)]
    pub const fn of<T: DomainEvent + UpcastFrom<S>, S: DomainEvent>() -> Self {
        Upcaster {
            target: Side::of::<T>(),
            source: Side::of::<S>(),
            decode_source: decode_payload::<S>,
            encode_source: encode_payload::<S>,
            convert: convert::<T, S>,
            wrap_target: wrap::<T>,
        }
    }

    /// The name of the older type, e.g. `acme.crm.1.event.company.created`.
    pub fn source_name(&self) -> &'static str {
        self.source.name
    }

    /// The Rust type of the older version.
    pub fn source_type_name(&self) -> &'static str {
        (self.source.type_name)()
    }

    /// The name of the newer type.
    pub fn target_name(&self) -> &'static str {
        self.target.name
    }

    /// The Rust type of the newer version.
    pub fn target_type_name(&self) -> &'static str {
        (self.target.type_name)()
    }
}

/// Every upcaster linked into the program.
pub fn upcasters() -> impl Iterator<Item = &'static Upcaster> {
    inventory::iter::<Upcaster>.into_iter()
}

/// Why the upcasters of a program do not form chains (found when the bus
/// is built).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpcastError {
    /// Two upcasters convert one source type.
    #[error(
        "`{from}` (`{from_name}`) has two upcasters, into `{first}` and into `{second}`; \
         an older version is upcast into exactly one newer type: keep one `upcast_from = ..` \
         and let the other type upcast from the first (a chain v1 -> v2 -> v3)"
    )]
    TwoUpcasters {
        /// The source type.
        from: &'static str,
        /// Its event name.
        from_name: &'static str,
        /// One target.
        first: &'static str,
        /// The other.
        second: &'static str,
    },
    /// An upcaster skips a version that the program links.
    #[error(
        "the upcaster chain has a gap: `{into}` (version {into_version}) upcasts from `{from}` \
         (version {from_version}), skipping `{skipped}` (`{skipped_name}`), which this program also \
         links, so events published under `{skipped_name}` would not reach the handlers of `{into}`; \
         declare `upcast_from = {skipped_short}` on `{into}` and `upcast_from = {from_short}` on `{skipped}`"
    )]
    Gap {
        /// The newer type.
        into: &'static str,
        /// Its version.
        into_version: u32,
        /// The older type.
        from: &'static str,
        /// Its version.
        from_version: u32,
        /// The type of a version between them.
        skipped: &'static str,
        /// Its event name.
        skipped_name: &'static str,
        /// `skipped` without its module path.
        skipped_short: &'static str,
        /// `from` without its module path.
        from_short: &'static str,
    },
    /// Upcasters lead from a type back to itself.
    #[error(
        "upcasters form a cycle: {}; each upcaster goes from a lower version to a higher one, \
         so remove the one that goes back",
        types.join(" -> ")
    )]
    Cycle {
        /// The types of the cycle, the first one repeated at the end.
        types: Vec<&'static str>,
    },
}

fn short(type_name: &'static str) -> &'static str {
    type_name.rsplit("::").next().unwrap_or(type_name)
}

/// One way to decode an event of a route's name for handlers of a newer
/// type: the upcasters from that name up to the handlers' type, in order.
#[derive(Debug, Clone)]
pub(crate) struct Chain {
    steps: Vec<&'static Upcaster>,
}

impl Chain {
    /// Decodes the attributes as the chain's source type and upcasts them
    /// to its target, keeping the identity and the published name.
    pub(crate) fn decode(
        &self,
        id: EventId,
        occurred_on: DateTime<Utc>,
        attributes: &str,
    ) -> Result<SharedEvent, DecodeError> {
        let (Some(first), Some(last)) = (self.steps.first(), self.steps.last()) else {
            return Err(internal("an empty upcaster chain"));
        };
        let published_as = first.source.name;
        let mut payload = (first.decode_source)(attributes)?;
        for step in &self.steps {
            payload = (step.convert)(payload).map_err(|_| internal(step.target.name))?;
        }
        tracing::debug!(
            published_as,
            upcast_to = last.target.name,
            id = %id,
            "event upcast"
        );
        (last.wrap_target)(payload, id, occurred_on, published_as)
            .map_err(|_| internal(last.target.name))
    }

    /// The chain's source event as JSON attributes, when `event` is one
    /// (an in-process publish of the older type).
    pub(crate) fn encode_source(
        &self,
        event: &SharedEvent,
    ) -> Option<Result<Encoded, EncodeError>> {
        self.steps.first().and_then(|u| (u.encode_source)(event))
    }
}

#[cold]
fn internal(at: &str) -> DecodeError {
    DecodeError::new(
        None,
        "type",
        format!("internal error: an upcaster's types disagree at `{at}`"),
    )
}

/// The upcaster chains of a program: for each newer type, the names of the
/// older versions it receives and the chain from each.
#[derive(Debug, Default, Clone)]
pub(crate) struct Chains {
    /// Target type → (older name, chain), nearest version first.
    by_target: HashMap<TypeId, Vec<(&'static str, Chain)>>,
}

impl Chains {
    /// The chains of every linked upcaster, checked against the linked
    /// event types (`(name, type name)`).
    pub(crate) fn discover(
        types: impl Iterator<Item = (&'static str, &'static str)>,
    ) -> Result<Self, UpcastError> {
        let all: Vec<&'static Upcaster> = upcasters().collect();
        Chains::build(&all, &types.collect::<Vec<_>>())
    }

    /// The chains of `upcasters`; `types` are the linked event types
    /// (`(name, type name)`), for the gap check.
    pub(crate) fn build(
        upcasters: &[&'static Upcaster],
        types: &[(&'static str, &'static str)],
    ) -> Result<Self, UpcastError> {
        // One upcaster per source.
        let mut by_source: HashMap<TypeId, &'static Upcaster> = HashMap::new();
        for &u in upcasters {
            let key = (u.source.type_id)();
            match by_source.get(&key) {
                Some(first) if (first.target.type_id)() != (u.target.type_id)() => {
                    return Err(UpcastError::TwoUpcasters {
                        from: u.source_type_name(),
                        from_name: u.source.name,
                        first: first.target_type_name(),
                        second: u.target_type_name(),
                    });
                }
                Some(_) => {}
                None => {
                    by_source.insert(key, u);
                }
            }
        }
        // No cycles: from each source, the targets lead up and end.
        for &start in by_source.values() {
            let mut seen = vec![(start.source.type_id)()];
            let mut names = vec![start.source_type_name()];
            let mut at = start;
            loop {
                let next = (at.target.type_id)();
                names.push(at.target_type_name());
                if seen.contains(&next) {
                    // Report the cycle itself, from where it closes.
                    let from = seen.iter().position(|t| *t == next).unwrap_or(0);
                    return Err(UpcastError::Cycle {
                        types: names[from..].to_vec(),
                    });
                }
                seen.push(next);
                match by_source.get(&next) {
                    Some(u) => at = u,
                    None => break,
                }
            }
        }
        // No gaps: no linked version of the same event between a source
        // and its target.
        for &u in by_source.values() {
            let (from, into) = (u.source.parts, u.target.parts);
            for &(name, type_name) in types {
                let Ok(parts) = EventName::parse(name) else {
                    continue;
                };
                let same_event = parts.company == into.company
                    && parts.service == into.service
                    && parts.message_type == into.message_type
                    && parts.resource == into.resource
                    && parts.action == into.action;
                if same_event && from.version < parts.version && parts.version < into.version {
                    return Err(UpcastError::Gap {
                        into: u.target_type_name(),
                        into_version: into.version,
                        from: u.source_type_name(),
                        from_version: from.version,
                        skipped: type_name,
                        skipped_name: name,
                        skipped_short: short(type_name),
                        from_short: short(u.source_type_name()),
                    });
                }
            }
        }
        // Each target's chains: walk down from it through the upcasters
        // into each type.
        let mut into: HashMap<TypeId, Vec<&'static Upcaster>> = HashMap::new();
        for &u in by_source.values() {
            into.entry((u.target.type_id)()).or_default().push(u);
        }
        let mut by_target = HashMap::new();
        for &target in into.keys() {
            let mut found = Vec::new();
            let mut stack: Vec<Vec<&'static Upcaster>> =
                into[&target].iter().map(|u| vec![*u]).collect();
            while let Some(path) = stack.pop() {
                let Some(&lowest) = path.last() else { continue };
                if let Some(older) = into.get(&(lowest.source.type_id)()) {
                    for u in older {
                        let mut longer = path.clone();
                        longer.push(*u);
                        stack.push(longer);
                    }
                }
                // Applied from the oldest up.
                let steps: Vec<_> = path.iter().rev().copied().collect();
                found.push((lowest.source.name, Chain { steps }));
            }
            found.sort_by_key(|(_, chain)| chain.steps.len());
            by_target.insert(target, found);
        }
        Ok(Chains { by_target })
    }

    /// The older names a handler of `target` receives, with their chains.
    pub(crate) fn older(&self, target: TypeId) -> &[(&'static str, Chain)] {
        self.by_target.get(&target).map_or(&[], Vec::as_slice)
    }
}

/// Several decodings of one received event, one per event type its
/// route's handlers take (`Event<V1>` for a handler of v1, `Event<V3>` for
/// one of v3): what a route with handlers of several versions hands on.
pub(crate) struct Versions(pub(crate) Vec<SharedEvent>);

/// `event` as an `Event<E>`: the event itself, or its version `E` when it
/// is a [`Versions`].
pub(crate) fn downcast_event<E: DomainEvent>(
    event: SharedEvent,
) -> Result<Arc<Event<E>>, SharedEvent> {
    let event = match event.downcast::<Event<E>>() {
        Ok(typed) => return Ok(typed),
        Err(event) => event,
    };
    let found = event
        .downcast_ref::<Versions>()
        .and_then(|v| v.0.iter().find(|e| e.is::<Event<E>>()).cloned());
    match found {
        Some(one) => one.downcast::<Event<E>>(),
        None => Err(event),
    }
}

/// Items the derive's expansion of `upcast_from` uses.
pub(crate) mod private {
    pub use super::{UpcastFrom, UpcastSource, Upcaster};

    /// `a == b`, in a constant (the compile-time checks of `upcast_from`).
    pub const fn same_str(a: &str, b: &str) -> bool {
        let (a, b) = (a.as_bytes(), b.as_bytes());
        if a.len() != b.len() {
            return false;
        }
        let mut i = 0;
        while i < a.len() {
            if a[i] != b[i] {
                return false;
            }
            i += 1;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(crate::DomainEvent, Debug, Clone, PartialEq)]
    #[event(
        company = "acme",
        service = "crm",
        version = 1,
        resource = "lead",
        action = "won"
    )]
    struct WonV1 {
        amount: u32,
    }

    #[derive(crate::DomainEvent, Debug, Clone, PartialEq)]
    #[event(
        company = "acme",
        service = "crm",
        version = 2,
        resource = "lead",
        action = "won"
    )]
    struct WonV2 {
        cents: u64,
    }

    #[derive(crate::DomainEvent, Debug, Clone, PartialEq)]
    #[event(
        company = "acme",
        service = "crm",
        version = 3,
        resource = "lead",
        action = "won"
    )]
    struct WonV3 {
        cents: u64,
        currency: String,
    }

    impl From<WonV1> for WonV2 {
        fn from(old: WonV1) -> Self {
            WonV2 {
                cents: u64::from(old.amount) * 100,
            }
        }
    }
    impl From<WonV2> for WonV3 {
        fn from(old: WonV2) -> Self {
            WonV3 {
                cents: old.cents,
                currency: "EUR".into(),
            }
        }
    }
    impl From<WonV1> for WonV3 {
        fn from(old: WonV1) -> Self {
            WonV2::from(old).into()
        }
    }
    impl From<WonV2> for WonV1 {
        fn from(old: WonV2) -> Self {
            WonV1 {
                amount: u32::try_from(old.cents / 100).unwrap_or(u32::MAX),
            }
        }
    }

    static V2_FROM_V1: Upcaster = Upcaster::of::<WonV2, WonV1>();
    static V3_FROM_V2: Upcaster = Upcaster::of::<WonV3, WonV2>();
    static V3_FROM_V1: Upcaster = Upcaster::of::<WonV3, WonV1>();
    static V1_FROM_V2: Upcaster = Upcaster::of::<WonV1, WonV2>();

    fn types() -> Vec<(&'static str, &'static str)> {
        vec![
            (WonV1::EVENT_NAME, std::any::type_name::<WonV1>()),
            (WonV2::EVENT_NAME, std::any::type_name::<WonV2>()),
            (WonV3::EVENT_NAME, std::any::type_name::<WonV3>()),
        ]
    }

    #[test]
    fn a_chain_composes_and_keeps_the_identity() {
        let chains = Chains::build(&[&V3_FROM_V2, &V2_FROM_V1], &types()).unwrap();
        let older = chains.older(TypeId::of::<WonV3>());
        let names: Vec<_> = older.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, [WonV2::EVENT_NAME, WonV1::EVENT_NAME]);
        let at = "2026-01-02T03:04:05.000006Z".parse().unwrap();
        let shared = older[1]
            .1
            .decode(EventId::from("e-1"), at, r#"{"amount": 7}"#)
            .unwrap();
        let event = downcast_event::<WonV3>(shared).unwrap();
        assert_eq!(event.cents, 700);
        assert_eq!(event.currency, "EUR");
        assert_eq!(event.id().as_str(), "e-1");
        assert_eq!(event.occurred_on(), at);
        assert_eq!(event.published_as(), WonV1::EVENT_NAME);
        assert_eq!(chains.older(TypeId::of::<WonV1>()).len(), 0);
    }

    #[test]
    fn a_chain_that_skips_a_linked_version_is_a_gap() {
        let err = Chains::build(&[&V3_FROM_V1], &types()).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, UpcastError::Gap { .. }), "{text}");
        assert!(text.contains("WonV3` (version 3) upcasts from `"), "{text}");
        assert!(text.contains("skipping `"), "{text}");
        assert!(text.contains("upcast_from = WonV2"), "{text}");
        // Without v2 in the program, v3 from v1 is no gap.
        let without_v2 = [types()[0], types()[2]];
        assert!(Chains::build(&[&V3_FROM_V1], &without_v2).is_ok());
    }

    #[test]
    fn two_upcasters_from_one_source_and_cycles_are_refused() {
        let err = Chains::build(&[&V2_FROM_V1, &V3_FROM_V1], &[]).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, UpcastError::TwoUpcasters { .. }), "{text}");
        assert!(text.contains("WonV2") && text.contains("WonV3"), "{text}");

        let err = Chains::build(&[&V2_FROM_V1, &V1_FROM_V2], &[]).unwrap_err();
        let UpcastError::Cycle { types } = &err else {
            panic!("{err}")
        };
        assert_eq!(types.len(), 3, "{err}");
        assert_eq!(types.first(), types.last());
        assert!(err.to_string().starts_with("upcasters form a cycle: "));
    }

    #[test]
    fn a_bad_body_is_a_decode_error_naming_the_older_event() {
        let chains = Chains::build(&[&V2_FROM_V1], &types()).unwrap();
        let (_, chain) = &chains.older(TypeId::of::<WonV2>())[0];
        let err = chain
            .decode(EventId::from("e"), Utc::now(), r#"{"amount": "x"}"#)
            .unwrap_err();
        assert!(err.to_string().contains(WonV1::EVENT_NAME), "{err}");
    }
}
