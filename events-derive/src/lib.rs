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
//! Do not depend on this crate directly: `events-core` re-exports both macros
//! (behind its default `derive` feature) and the paths the generated code
//! needs, so your crate depends on `events-core` alone.
//!
//! The crate is split by phase: `attr` parses attributes, `ast` holds the
//! typed view of the input (with the user's tokens for spans), `valid`
//! checks the rules, and `expand_*` generates code from the typed view only.

mod ast;
mod attr;
mod ctxt;
mod expand_event;
mod expand_handler;
mod symbol;
mod valid;
mod wrap;

use proc_macro::TokenStream;

/// Derives `events_core::DomainEvent`. See `events_core::DomainEvent`.
#[proc_macro_derive(DomainEvent, attributes(event))]
pub fn derive_domain_event(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    expand_event::derive(&input).into()
}

/// Registers an async fn (or an `impl Handler<E> for T` block) as an event
/// handler, discovered at start-up. See `events_core::handler`.
#[proc_macro_attribute]
pub fn handler(args: TokenStream, input: TokenStream) -> TokenStream {
    expand_handler::expand(args.into(), input.into()).into()
}
