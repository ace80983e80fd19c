//! Handlers: what runs when an event is published or received.
//!
//! # Functions
//!
//! Write a handler as a plain `async fn` with `#[handler]`; it is registered
//! through `inventory` and found by [`EventBus::builder`](crate::EventBus::builder)
//! without any list in `main`:
//!
//! ```
//! use events_core::{handler, DomainEvent, Event};
//! # #[derive(DomainEvent, Debug, Clone)]
//! # #[event(company = "acme", service = "shop", version = 1, resource = "order", action = "placed")]
//! # struct OrderPlaced { total: u64 }
//!
//! #[handler]
//! async fn log_order(event: &Event<OrderPlaced>) {
//!     println!("order {} of {} placed at {}", event.id(), event.total, event.occurred_on());
//! }
//!
//! #[handler]
//! async fn charge(event: &OrderPlaced) -> Result<(), std::io::Error> {
//!     let _ = event.total;
//!     Ok(())
//! }
//! ```
//!
//! The argument may be `&Event<E>`, `&E`, `Event<E>` or `E` (the by-value
//! forms clone, so `E: Clone`). The return type is `()` or `Result<(), Err>`
//! for any `Err` convertible into [`HandlerError`].
//!
//! # Handlers with dependencies
//!
//! A handler that needs dependencies (a pool, a client) implements
//! [`Handler`] on a struct and is registered explicitly with
//! [`EventBusBuilder::register_handler`](crate::EventBusBuilder::register_handler),
//! on a builder from the environment so `EVENT_BUS_*` still applies:
//! `EventBus::builder_from_env()?.register_handler(Ledger { .. }).connect().await?`
//! ([`EventBus::builder_from_env`](crate::EventBus::builder_from_env)); a struct that implements `Default` may also carry `#[handler]` on its
//! `impl Handler<E> for T` block.

use std::any::TypeId;
use std::borrow::Cow;
use std::future::Future;
use std::sync::Arc;

use crate::envelope::Event;
use crate::envelope::SharedEvent;
use crate::event::DomainEvent;

/// The error a handler reports: any error, boxed.
pub type HandlerError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What a handler returns once normalized.
pub type HandlerResult = Result<(), HandlerError>;

/// A handler of events of type `E`, usually a struct holding dependencies.
///
/// ```
/// use events_core::{DomainEvent, Event, Handler, HandlerResult};
/// # #[derive(DomainEvent, Debug, Clone)]
/// # #[event(company = "acme", service = "shop", version = 1, resource = "order", action = "placed")]
/// # struct OrderPlaced { total: u64 }
///
/// struct Ledger { account: String }
///
/// impl Handler<OrderPlaced> for Ledger {
///     async fn handle(&self, event: &Event<OrderPlaced>) -> HandlerResult {
///         println!("book {} on {}", event.total, self.account);
///         Ok(())
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not handle `{E}`",
    label = "not a handler of `{E}`",
    note = "implement `Handler<{E}>` for `{Self}`, or write an `async fn` with `#[handler]`"
)]
pub trait Handler<E: DomainEvent>: Send + Sync + 'static {
    /// Reacts to one event. An `Err` is logged and reported in the publish
    /// outcome; it never stops the other handlers.
    fn handle(&self, event: &Event<E>) -> impl Future<Output = HandlerResult> + Send;
}

/// A handler with its event type erased, as the bus holds it.
pub(crate) trait ErasedHandler: Send + Sync + 'static {
    /// Starts a call; gives the event back when it is not of this handler's type.
    fn call(&self, event: SharedEvent) -> Result<private::HandlerFuture, SharedEvent>;
}

pub(crate) struct TypedHandler<E, H> {
    handler: Arc<H>,
    _event: std::marker::PhantomData<fn(E)>,
}

impl<E, H> TypedHandler<E, H> {
    pub(crate) fn new(handler: H) -> Self {
        TypedHandler {
            handler: Arc::new(handler),
            _event: std::marker::PhantomData,
        }
    }
}

impl<E: DomainEvent, H: Handler<E>> ErasedHandler for TypedHandler<E, H> {
    fn call(&self, event: SharedEvent) -> Result<private::HandlerFuture, SharedEvent> {
        let event = crate::upcast::downcast_event::<E>(event)?;
        let handler = Arc::clone(&self.handler);
        Ok(Box::pin(async move { handler.handle(&event).await }))
    }
}

/// How the bus calls a handler: a `#[handler] async fn` directly through
/// its function pointer, anything else through the erased trait.
#[derive(Clone)]
pub(crate) enum Callable {
    Function(fn(SharedEvent) -> Result<private::HandlerFuture, SharedEvent>),
    Erased(Arc<dyn ErasedHandler>),
}

impl Callable {
    /// Starts a call; gives the event back when it is not of this handler's type.
    pub(crate) fn call(&self, event: SharedEvent) -> Result<private::HandlerFuture, SharedEvent> {
        match self {
            Callable::Function(call) => call(event),
            Callable::Erased(handler) => handler.call(event),
        }
    }
}

/// A handler as the bus keeps it: name, event, and the erased callable.
#[derive(Clone)]
pub(crate) struct HandlerEntry {
    pub(crate) name: Cow<'static, str>,
    pub(crate) event_name: &'static str,
    pub(crate) event_type_name: &'static str,
    pub(crate) event_type_id: TypeId,
    pub(crate) handler: Callable,
}

impl HandlerEntry {
    pub(crate) fn typed<E: DomainEvent, H: Handler<E>>(
        name: Cow<'static, str>,
        handler: H,
    ) -> Self {
        HandlerEntry {
            name,
            event_name: E::EVENT_NAME,
            event_type_name: std::any::type_name::<E>(),
            event_type_id: TypeId::of::<E>(),
            handler: Callable::Erased(Arc::new(TypedHandler::<E, H>::new(handler))),
        }
    }
}

/// A handler found by discovery: a `#[handler]` linked into the program.
#[derive(Clone, Copy)]
pub struct DiscoveredHandler(&'static private::HandlerRegistration);

impl DiscoveredHandler {
    /// The handler's stable name: module path and function or type name.
    pub fn name(&self) -> &'static str {
        self.0.name()
    }

    /// The name of the event it handles.
    pub fn event_name(&self) -> &'static str {
        self.0.event_name()
    }

    /// The handler as the bus keeps it.
    pub(crate) fn entry(&self) -> HandlerEntry {
        self.0.entry()
    }
}

impl std::fmt::Debug for DiscoveredHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscoveredHandler")
            .field("name", &self.0.name())
            .field("event_name", &self.0.event_name())
            .finish()
    }
}

/// Every `#[handler]` linked into the program.
pub fn discovered_handlers() -> impl Iterator<Item = DiscoveredHandler> {
    inventory::iter::<private::HandlerRegistration>
        .into_iter()
        .map(DiscoveredHandler)
}

// The names these items had before they moved to `__private` (they were
// public only for the derive's generated code).

/// Deprecated: not public API (the derive's generated code uses it through
/// `__private`).
#[doc(hidden)]
#[deprecated(note = "not public API: a handler returns `HandlerResult`")]
pub type HandlerFuture = private::HandlerFuture;

/// Deprecated: not public API; [`discovered_handlers`] yields
/// [`DiscoveredHandler`]s.
#[doc(hidden)]
#[deprecated(note = "use `DiscoveredHandler` (what `discovered_handlers` yields)")]
pub type HandlerRegistration = private::HandlerRegistration;

/// Deprecated: not public API.
#[doc(hidden)]
#[deprecated(note = "not public API")]
pub type HandlerEntryParts = private::HandlerEntryParts;

// Traits have no deprecatable alias: the old paths stay, hidden.
#[doc(hidden)]
pub use private::{EventArg, HandlerOutput};

/// Items the `#[handler]` expansion uses, re-exported by `__private`.
pub(crate) mod private {
    use std::any::TypeId;
    use std::borrow::Cow;
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::Arc;

    use super::{
        Callable, ErasedHandler, Handler, HandlerEntry, HandlerError, HandlerResult, TypedHandler,
    };
    use crate::envelope::{Event, SharedEvent};
    use crate::event::DomainEvent;

    /// The boxed future of one handler call.
    pub type HandlerFuture = Pin<Box<dyn Future<Output = HandlerResult> + Send + 'static>>;

    /// Return types a `#[handler]` function may have: `()` or `Result<(), E>`.
    #[diagnostic::on_unimplemented(
        message = "a handler must return `()` or `Result<(), E>`, not `{Self}`",
        label = "unsupported return type",
        note = "the error type `E` must convert into `Box<dyn std::error::Error + Send + Sync>`"
    )]
    pub trait HandlerOutput {
        /// Normalizes the output.
        fn into_result(self) -> HandlerResult;
    }

    impl HandlerOutput for () {
        fn into_result(self) -> HandlerResult {
            Ok(())
        }
    }

    impl<Err: Into<HandlerError>> HandlerOutput for Result<(), Err> {
        fn into_result(self) -> HandlerResult {
            self.map_err(Into::into)
        }
    }

    /// Argument types a `#[handler]` function may take: an event `E` or its
    /// envelope `Event<E>`, by reference or (cloned) by value.
    ///
    /// `#[handler]` checks an argument `Event<E>` or `E` as `E: EventArg`, so a
    /// type that is not an event is one error, at that type, in this trait's
    /// words.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` is not a domain event",
        label = "not a domain event",
        note = "a handler takes `&Event<E>`, `&E`, `Event<E>` or `E` for an `E` with `#[derive(DomainEvent)]`",
        note = "an event is a struct of your crate with `#[derive(DomainEvent)]` and `#[event(company = \"..\", service = \"..\", version = 1, resource = \"..\", action = \"..\")]`",
        note = "a type of another crate (such as `String`) cannot be an event itself: declare an event struct with a field of that type"
    )]
    pub trait EventArg: Sized + Send + Sync + 'static {
        /// The event type handled.
        type Event: DomainEvent;

        /// Borrows the argument from the envelope.
        fn borrow(event: &Event<Self::Event>) -> &Self;

        /// Clones the argument out of the envelope (by-value handlers).
        fn owned(event: &Event<Self::Event>) -> Self
        where
            Self: Clone,
        {
            Self::borrow(event).clone()
        }
    }

    // Reporting this impl's bound would name `DomainEvent` and point at the
    // user's own derive (the one impl there is) rather than at the argument.
    #[diagnostic::do_not_recommend]
    impl<E: DomainEvent> EventArg for E {
        type Event = E;
        fn borrow(event: &Event<E>) -> &E {
            event.payload()
        }
    }

    // Listing this impl under a wrong argument ("the trait `EventArg` is
    // implemented for `Event<E>`") would point the user into this file.
    #[diagnostic::do_not_recommend]
    impl<E: DomainEvent> EventArg for Event<E> {
        type Event = E;
        fn borrow(event: &Event<E>) -> &Self {
            event
        }
    }

    /// A handler found by discovery (`#[handler]`), as `inventory` collects it.
    pub struct HandlerRegistration {
        name: &'static str,
        event_name: &'static str,
        event_type_name: fn() -> &'static str,
        event_type_id: fn() -> TypeId,
        kind: Kind,
    }

    enum Kind {
        Function(fn(SharedEvent) -> Result<HandlerFuture, SharedEvent>),
        Instance(fn() -> HandlerEntryParts),
    }

    /// What an `impl` handler's factory returns (opaque).
    pub struct HandlerEntryParts(Arc<dyn ErasedHandler>);

    impl HandlerRegistration {
        /// The handler's stable name: module path and function or type name.
        pub fn name(&self) -> &'static str {
            self.name
        }

        /// The name of the event it handles.
        pub fn event_name(&self) -> &'static str {
            self.event_name
        }

        pub(crate) fn entry(&self) -> HandlerEntry {
            HandlerEntry {
                name: Cow::Borrowed(self.name),
                event_name: self.event_name,
                event_type_name: (self.event_type_name)(),
                event_type_id: (self.event_type_id)(),
                handler: match self.kind {
                    Kind::Function(f) => Callable::Function(f),
                    Kind::Instance(make) => Callable::Erased(make().0),
                },
            }
        }
    }

    impl std::fmt::Debug for HandlerRegistration {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("HandlerRegistration")
                .field("name", &self.name)
                .field("event_name", &self.event_name)
                .finish_non_exhaustive()
        }
    }

    inventory::collect!(HandlerRegistration);

    /// Registration of a `#[handler] async fn`.
    pub const fn function_handler<E: DomainEvent>(
        name: &'static str,
        call: fn(SharedEvent) -> Result<HandlerFuture, SharedEvent>,
    ) -> HandlerRegistration {
        HandlerRegistration {
            name,
            event_name: E::EVENT_NAME,
            event_type_name: std::any::type_name::<E>,
            event_type_id: TypeId::of::<E>,
            kind: Kind::Function(call),
        }
    }

    /// Registration of a `#[handler] impl Handler<E> for T` with `T: Default`.
    pub const fn instance_handler<E: DomainEvent>(
        name: &'static str,
        make: fn() -> HandlerEntryParts,
    ) -> HandlerRegistration {
        HandlerRegistration {
            name,
            event_name: E::EVENT_NAME,
            event_type_name: std::any::type_name::<E>,
            event_type_id: TypeId::of::<E>,
            kind: Kind::Instance(make),
        }
    }

    /// Builds the erased handler of an `impl` block.
    pub fn make_instance<E: DomainEvent, H: Handler<E> + DefaultHandler>() -> HandlerEntryParts {
        HandlerEntryParts(Arc::new(TypedHandler::<E, H>::new(H::instance())))
    }

    /// A handler type `#[handler] impl` can build on its own: `Default`.
    /// Its own trait so that a handler with dependencies is told what to
    /// do instead (not to derive `Default` on a struct holding an SMTP
    /// endpoint).
    #[diagnostic::on_unimplemented(
        message = "`#[handler] impl` needs `{Self}: Default`: discovery builds the handler itself, with `Default::default()`",
        label = "`{Self}` does not implement `Default`",
        note = "a handler with dependencies (a client, a pool, settings) drops `#[handler]` and is registered with them: \
                `EventBus::builder_from_env()?.register_handler({Self} {{ .. }})`",
        note = "a handler without dependencies can `#[derive(Default)]`"
    )]
    pub trait DefaultHandler: Sized {
        /// The handler, built by `Default`.
        fn instance() -> Self;
    }

    // Reporting this impl's bound would say only "`Default` is not
    // implemented", with rustc's hint to derive it.
    #[diagnostic::do_not_recommend]
    impl<T: Default> DefaultHandler for T {
        fn instance() -> Self {
            T::default()
        }
    }

    /// The shared event type handlers receive (hidden).
    pub type Shared = SharedEvent;

    /// Downcasts the shared event to `Event<E>`.
    pub fn downcast<E: DomainEvent>(event: SharedEvent) -> Result<Arc<Event<E>>, SharedEvent> {
        crate::upcast::downcast_event::<E>(event)
    }

    /// The argument of a handler taking `&Event<E>`.
    pub fn envelope<E: DomainEvent>(event: &Event<E>) -> &Event<E> {
        event
    }

    /// The argument of a handler taking `Event<E>` by value (cloned).
    pub fn envelope_owned<E: DomainEvent + Clone>(event: &Event<E>) -> Event<E> {
        event.clone()
    }

    /// Checks (at the user's span) that a handler's future is `Send`.
    pub fn assert_send<F: Future + Send>(future: F) -> F {
        future
    }
}
