//! The seam to remote buses: a [`Publisher`] sends raw events (EventBridge
//! in `events-eventbridge`), and a [`PublisherProvider`] lets a linked crate
//! supply the publisher for an `EVENT_BUS_MODE` without code in `main`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::config::BusConfig;
use crate::envelope::RawEvent;

/// A boxed, `Send` future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why one event was not accepted by the remote bus. It reads
/// `{code}: {message}`, or only the message when the code is empty.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", if .code.is_empty() { String::new() } else { format!("{}: ", .code) })]
pub struct PublishError {
    /// The service's error code (e.g. `ThrottlingException`) or a local one.
    pub code: String,
    /// The service's message.
    pub message: String,
    /// `true` when sending the same event again can never succeed (too large,
    /// malformed, access denied): `publish` sends such an event straight to
    /// the store's dead letters, and replay turns it into one.
    pub permanent: bool,
}

impl PublishError {
    /// A failure that may pass on a later attempt.
    pub fn retryable(code: impl Into<String>, message: impl Into<String>) -> Self {
        PublishError {
            code: code.into(),
            message: message.into(),
            permanent: false,
        }
    }

    /// A failure that will fail again.
    pub fn permanent(code: impl Into<String>, message: impl Into<String>) -> Self {
        PublishError {
            code: code.into(),
            message: message.into(),
            permanent: true,
        }
    }
}

/// What the remote bus said of one event it accepted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accepted {
    /// The remote bus's id for the event (EventBridge's `EventId`, the `id` of the envelope a queue receives), when it gives one.
    pub remote_id: Option<String>,
}

/// Sends events to a remote bus.
///
/// `publish` gets a batch and returns one result per event, in order. It
/// retries what is worth retrying itself; an `Err` is final for this call.
/// The bus then keeps the event in its failover store when the error is
/// retryable, and makes it a dead letter when it is
/// [permanent](PublishError::permanent).
pub trait Publisher: Send + Sync + 'static {
    /// A short name for logs, e.g. `eventbridge`.
    fn name(&self) -> &str;

    /// Publishes `events`; the result has exactly one entry per event.
    fn publish<'a>(
        &'a self,
        events: &'a [RawEvent],
    ) -> BoxFuture<'a, Vec<Result<Accepted, PublishError>>>;
}

/// Builds the publisher of one `EVENT_BUS_MODE`, registered with `inventory`
/// by the crate that implements it (`events-eventbridge` registers
/// `eventbridge`). Link that crate and [`EventBus::from_env`](crate::EventBus::from_env)
/// finds it.
pub struct PublisherProvider {
    /// The mode it serves, as written in `EVENT_BUS_MODE`.
    pub mode: &'static str,
    /// Builds the publisher from the configuration.
    pub build: BuildPublisher,
}

/// The factory function of a [`PublisherProvider`].
pub type BuildPublisher =
    fn(&BusConfig) -> BoxFuture<'static, Result<Arc<dyn Publisher>, PublishError>>;

inventory::collect!(PublisherProvider);

/// The provider linked for `mode`, if any.
pub fn provider(mode: &str) -> Option<&'static PublisherProvider> {
    inventory::iter::<PublisherProvider>
        .into_iter()
        .find(|p| p.mode == mode)
}
