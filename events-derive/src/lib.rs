//! Procedural macros of [`events-core`](https://docs.rs/events-core):
//! `#[derive(DomainEvent)]` and `#[handler]`.
//!
//! ```
//! use events_core::{handler, DomainEvent, Event};
//!
//! #[derive(DomainEvent, Debug, Clone)]
//! #[event(company = "acme", service = "billing", version = 1, resource = "invoice", action = "paid")]
//! struct InvoicePaid {
//!     #[event(rename = "amountCents")]
//!     amount_cents: u64,
//! }
//!
//! #[handler]
//! async fn book(event: &Event<InvoicePaid>) {
//!     let _ = event.amount_cents;
//! }
//!
//! assert_eq!(InvoicePaid::EVENT_NAME, "acme.billing.1.event.invoice.paid");
//! ```
//!
//! # Use it through events-core
//!
//! Do not depend on this crate directly: `events-core` re-exports both macros
//! (behind its default `derive` feature) and the paths the generated code
//! needs, so your crate depends on `events-core` alone.
//!
//! # Features
//!
//! This crate has no cargo features of its own; the macros are compiled in
//! when `events-core`'s feature is on:
//!
//! | feature of `events-core` | default | what it gives |
//! | --- | --- | --- |
//! | `derive` | yes | `events_core::DomainEvent` (the derive) and `events_core::handler` (the attribute), from this crate |
//!
//! # Layout
//!
//! The crate is split by phase, as thiserror's: `attr` parses the
//! attributes (their keys are the `symbol` constants), `ast` holds the typed
//! view of the input (with the user's tokens for spans), `valid` checks
//! every rule on that view, and `expand_*` generates code from the typed
//! view only, inside the one wrapper of `wrap`.

mod ast;
mod attr;
mod ctxt;
mod expand_event;
mod expand_handler;
mod expand_upcast;
mod serde_attr;
mod symbol;
mod valid;
mod wrap;

use proc_macro::TokenStream;

/// Derives `DomainEvent` for a struct: its event name, checked while your
/// crate compiles, and the reading and writing of its attributes.
///
/// ```
/// use events_core::DomainEvent;
///
/// #[derive(DomainEvent, Debug, Clone, PartialEq)]
/// #[event(company = "acme", service = "billing", version = 1, resource = "invoice", action = "paid")]
/// struct InvoicePaid {
///     #[event(rename = "amountCents")]
///     amount_cents: u64,
///     note: Option<String>,
/// }
///
/// assert_eq!(InvoicePaid::EVENT_NAME, "acme.billing.1.event.invoice.paid");
/// let event = InvoicePaid { amount_cents: 1250, note: None };
/// assert_eq!(event.to_json().unwrap(), r#"{"amountCents":1250,"note":null}"#);
/// assert_eq!(InvoicePaid::from_json(r#"{"amountCents":1250}"#).unwrap(), event);
/// ```
///
/// # `#[event(...)]` on the struct
///
/// | key | value |
/// | --- | --- |
/// | `company`, `service`, `resource` | a string matching `[a-z][a-z0-9_]*` |
/// | `version` | an integer literal from 1 to 4294967295 (not a string) |
/// | `action` | a string matching `[a-z][a-z0-9_]*` whose last `_` word is in the past tense (`created`, `paid`, `sent`) |
/// | `message_type` | optional; only `"event"` |
/// | `crate` | optional; the path of `events_core` when it is renamed or re-exported, e.g. `crate = "my_events"` |
///
/// The name is `{company}.{service}.{version}.event.{resource}.{action}`,
/// at most 128 characters (an EventBridge `DetailType`).
///
/// # `#[event(...)]` on a field
///
/// | option | effect |
/// | --- | --- |
/// | `rename = "wireName"` | the attribute's key on the wire (default: the field's name) |
/// | `skip` | not sent; `Default::default()` when read |
/// | `default` | `Default::default()` when the attribute is absent |
/// | `default = "path::to_fn"` | `path::to_fn()` when the attribute is absent |
///
/// An `Option` field may be absent; attributes the struct does not know are
/// ignored, so producers may add attributes without breaking readers.
///
/// # `#[serde(...)]` is refused
///
/// Only `#[event(...)]` shapes the event's attributes on the wire: the
/// derive writes and reads them itself and does not read `#[serde(...)]`.
/// The struct may also derive `Serialize`/`Deserialize` for other uses, but
/// a `#[serde(...)]` on it or on one of its fields would change only that
/// other form (a `#[serde(skip)]` secret would still be published), so each
/// one is a compile error naming the `#[event(...)]` option to write
/// instead: `rename` → `#[event(rename = "...")]`, `skip` (and
/// `skip_serializing`, `skip_deserializing`) → `#[event(skip)]`, `default`
/// → `#[event(default)]` or `#[event(default = "path")]`. Other serde
/// options (`flatten`, `alias`, `with`, and on the struct `rename_all`,
/// `deny_unknown_fields`, `tag`, ...) have no equivalent: rename each field
/// instead of `rename_all`; an event always ignores attributes it does not
/// know.
///
/// ```ignore
/// // (checked in tests/ui/event/fail/serde_field_attributes.rs)
/// use events_core::DomainEvent;
///
/// #[derive(DomainEvent, serde::Serialize)]
/// #[event(company = "acme", service = "shop", version = 1, resource = "cart", action = "emptied")]
/// struct CartEmptied {
///     #[serde(skip)] // error: write `#[event(skip)]` instead
///     secret: String,
/// }
/// ```
///
/// # Field types
///
/// Every sent field's type needs serde's `Serialize` and `Deserialize`; the
/// struct itself needs no serde derive (it may have one, without
/// `#[serde(...)]` attributes). A type without them is one error,
/// at the field's type.
///
/// # What it generates
///
/// The `DomainEvent` impl (`EVENT_NAME`, `NAME`, the attribute
/// (de)serialization) and a registration of the type, so a bus can decode
/// the event by name and refuses two types with one name. Generics, enums,
/// unions and tuple structs are refused: an event is one struct with one
/// name.
///
/// # Errors
///
/// Every broken rule is a compile error at its value, with the rule and a
/// corrected example, all reported at once:
///
/// ```compile_fail
/// use events_core::DomainEvent;
///
/// #[derive(DomainEvent)]
/// #[event(company = "Acme", service = "billing", version = "1", resource = "invoice", action = "pay")]
/// struct InvoicePaid; // `company` starts with `A`; `version` is a string; `pay` is not past tense
/// ```
#[proc_macro_derive(DomainEvent, attributes(event))]
pub fn derive_domain_event(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    expand_event::derive(&input).into()
}

/// Registers an `async fn` (or an `impl Handler<E> for T` block) as a
/// handler of one event type, found when the bus is built: no list of
/// handlers in `main`.
///
/// ```
/// use events_core::{handler, DomainEvent, Event};
///
/// #[derive(DomainEvent, Debug, Clone)]
/// #[event(company = "acme", service = "billing", version = 1, resource = "invoice", action = "paid")]
/// struct InvoicePaid {
///     amount_cents: u64,
/// }
///
/// #[handler]
/// async fn book(event: &Event<InvoicePaid>) -> Result<(), std::io::Error> {
///     println!("book {} (event {} at {})", event.amount_cents, event.id(), event.occurred_on());
///     Ok(())
/// }
/// ```
///
/// # Forms
///
/// - The one argument is the event: `&Event<E>` (with its id and
///   `occurred_on`), `&E`, or by value `Event<E>` / `E` (cloned, so
///   `E: Clone`), for an `E` with `#[derive(DomainEvent)]`.
/// - The return type is `()` or `Result<(), Err>` for any error type that
///   converts into a boxed `std::error::Error + Send + Sync`. An `Err` (or a
///   panic) is logged and reported in the publish outcome; it never stops
///   the other handlers.
/// - The future must be `Send`: the bus may run it on any thread.
/// - On `impl Handler<E> for T` with `T: Default`, the value is built once
///   with `Default`. A handler with dependencies implements `Handler<E>`
///   and is registered with `EventBusBuilder::register_handler` instead.
///
/// The handler's name, in logs and outcomes, is its module path and
/// function (or type) name, e.g. `my_service::handlers::book`.
///
/// # Options
///
/// `#[handler(crate = "path")]`: the path of `events_core` when it is
/// renamed or re-exported, as on the derive.
///
/// # Discovery
///
/// Registrations are collected with `inventory`. The linker drops a crate
/// nothing references, handlers included: keep a crate of handlers with
/// `use my_handlers as _;` (the bus warns when it finds no handler at all).
///
/// # Errors
///
/// Every broken rule is reported at once, at the token at fault:
///
/// ```compile_fail
/// use events_core::{handler, DomainEvent, Event};
/// # #[derive(DomainEvent, Debug, Clone)]
/// # #[event(company = "acme", service = "billing", version = 1, resource = "invoice", action = "paid")]
/// # struct InvoicePaid;
///
/// #[handler]
/// fn book(event: &mut Event<InvoicePaid>, ledger: &str) {} // not async; two arguments; `&mut`
/// ```
#[proc_macro_attribute]
pub fn handler(args: TokenStream, input: TokenStream) -> TokenStream {
    expand_handler::expand(args.into(), input.into()).into()
}
