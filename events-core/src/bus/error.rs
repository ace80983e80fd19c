//! Why the bus could not be built or could not deliver.

use std::fmt;

use crate::config::{ConfigError, Mode};
use crate::envelope::EventId;
use crate::error::{one_line, write_chain, DecodeError, EncodeError};
use crate::publisher::PublishError;
use crate::registry::DuplicateEventName;
use crate::store::StoreError;

/// Why the bus could not be built or could not deliver.
///
/// Its `Debug` is its message followed by its causes (the way `anyhow`
/// reports), not a struct dump: `main() -> Result<(), Box<dyn Error>>` shows
/// a person the sentence.
#[derive(thiserror::Error)]
pub enum BusError {
    /// A configuration value is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Two types claim one event name.
    #[error(transparent)]
    DuplicateEventName(#[from] DuplicateEventName),
    /// One handler is registered twice for one event.
    #[error("handler `{handler}` is registered twice for `{event}`; register it once (discovered `#[handler]`s need no explicit registration)")]
    DuplicateHandler {
        /// The handler's name.
        handler: String,
        /// The event.
        event: &'static str,
    },
    /// The upcasters of the program do not form chains (a gap, a cycle,
    /// two upcasters from one source).
    #[error(transparent)]
    Upcast(#[from] crate::upcast::UpcastError),
    /// A command has more than one handler in this program.
    #[error(
        "command `{command}` has two handlers, `{first}` and `{second}`; a command has exactly one \
         handler in a program: remove one of them (to react to what the command did, handle the \
         event its handler publishes)"
    )]
    DuplicateCommandHandler {
        /// The command's name.
        command: &'static str,
        /// One handler.
        first: String,
        /// The other.
        second: String,
    },
    /// The mode needs a publisher that is not in this program.
    #[error(
        "EVENT_BUS_MODE={mode} needs the EventBridge publisher, which is not built into this program: \
         add the `events-eventbridge` crate and `use events_eventbridge as _;` in main, or pass one with \
         `EventBusBuilder::publisher`"
    )]
    NoPublisher {
        /// The configured mode.
        mode: Mode,
    },
    /// The mode's publisher is linked, but `build()` cannot set it up (that
    /// is async): `connect().await` does.
    #[error(
        "EVENT_BUS_MODE={mode} needs its publisher set up, which `build()` cannot do: \
         use `.connect().await` instead of `.build()`"
    )]
    NotConnected {
        /// The configured mode.
        mode: Mode,
    },
    /// The publisher could not be set up.
    #[error("cannot set up the {mode} publisher")]
    PublisherSetup {
        /// The configured mode.
        mode: Mode,
        /// The cause.
        #[source]
        source: PublishError,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An event could not be serialized; nothing was published.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// A received event could not be decoded.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// Some events were neither accepted by the remote bus nor stored.
    ///
    /// The one message that says its source, and the source's causes (the
    /// store's reason, `database or disk is full`, is in `to_string()`): the
    /// message is what a caller that logs `{err}` must see. The chain
    /// printers ([`write_chain`], this type's `Debug`) still say it once.
    #[error("{} event(s) were not delivered and not stored (first: {}): {}", failed.len(), failed.first().map(EventId::as_str).unwrap_or("-"), one_line(source.as_ref()))]
    NotDelivered {
        /// The events that were lost to this call (the caller still has them).
        failed: Vec<EventId>,
        /// The events of the same call that were delivered.
        delivered: Vec<EventId>,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The operation needs a store and the bus has none.
    #[error("this bus has no store (built with `without_store`)")]
    NoStore,
    /// A received event has handlers but no registered type to decode it.
    #[error("no event type named `{name}` is linked into this program")]
    UnknownEvent {
        /// The event name.
        name: String,
    },
    /// `shutdown` timed out with handler tasks still running.
    #[error("shutdown timed out with {pending} handler task(s) still running")]
    ShutdownTimeout {
        /// Tasks still running.
        pending: usize,
    },
}

/// The message and each cause it does not already say, on one line
/// (`cannot set up the eventbridge publisher: NoRegion: AWS_REGION is not
/// set`): what `main() -> Result<(), Box<dyn Error>>` prints.
impl fmt::Debug for BusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct OneLine<'a>(&'a BusError);
        impl fmt::Display for OneLine<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write_chain(self.0, f)
            }
        }
        write!(f, "{:#}", OneLine(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error;

    #[test]
    fn debug_is_the_message_and_the_causes_it_does_not_repeat() {
        let err = BusError::PublisherSetup {
            mode: Mode::EventBridge,
            source: PublishError::permanent("NoRegion", "AWS_REGION is not set"),
        };
        assert_eq!(
            format!("{err:?}"),
            "cannot set up the eventbridge publisher: NoRegion: AWS_REGION is not set"
        );
        let err = BusError::NotDelivered {
            failed: vec![EventId::from("e-1")],
            delivered: Vec::new(),
            source: Box::new(std::io::Error::other("disk full")),
        };
        assert_eq!(
            format!("{err:?}"),
            "1 event(s) were not delivered and not stored (first: e-1): disk full"
        );
        let err = BusError::Config(ConfigError {
            var: "EVENT_BUS_MODE",
            value: "kafka".into(),
            expected: "`local` or `eventbridge`",
        });
        assert_eq!(
            format!("{err:?}"),
            "EVENT_BUS_MODE=`kafka` is not valid: expected `local` or `eventbridge`"
        );
    }

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn causes_not_in_the_message_are_listed() {
        struct Show<'a>(&'a dyn Error);
        impl fmt::Debug for Show<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write_chain(self.0, f)
            }
        }
        let err = Outer(std::io::Error::other("inner"));
        assert_eq!(
            format!("{:?}", Show(&err)),
            "outer\n\nCaused by:\n    inner"
        );
    }
}
