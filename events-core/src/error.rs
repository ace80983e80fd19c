//! Errors of encoding and decoding events.
//!
//! Every decoding error names the event (when known), the field (down to
//! the value inside a nested one, `lines[2].quantity`) and what was
//! expected, so a log line is enough to find the producer at fault.

use std::fmt;

/// An event (or its envelope) could not be decoded.
///
/// ```
/// use events_core::{DecodeError, DomainEvent};
/// # #[derive(DomainEvent, Debug)]
/// # #[event(company = "acme", service = "shop", version = 1, resource = "order", action = "placed")]
/// # struct OrderPlaced { total: u64 }
/// let attributes = serde_json::json!({ "total": "ten" });
/// let err = OrderPlaced::from_dict(attributes.as_object().unwrap()).unwrap_err();
/// assert_eq!(err.event(), Some("acme.shop.1.event.order.placed"));
/// assert_eq!(err.field(), "total");
/// assert!(err.to_string().contains("expected u64"));
/// ```
#[derive(Debug)]
pub struct DecodeError {
    event: Option<String>,
    field: String,
    problem: String,
}

impl DecodeError {
    /// A new error about `field` of `event`.
    pub fn new(event: Option<&str>, field: impl Into<String>, problem: impl Into<String>) -> Self {
        DecodeError {
            event: event.map(str::to_owned),
            field: field.into(),
            problem: problem.into(),
        }
    }

    /// Sets the event name when the error was raised before it was known.
    pub fn in_event(mut self, event: &str) -> Self {
        if self.event.is_none() {
            self.event = Some(event.to_owned());
        }
        self
    }

    /// The event name, when it was known.
    pub fn event(&self) -> Option<&str> {
        self.event.as_deref()
    }

    /// The field at fault: an attribute name, the path to a value inside
    /// one (`lines[2].quantity`, `customer.address.zip`), or an envelope
    /// field such as `detail.occurred_on`.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// What was wrong with it, including what was expected.
    pub fn problem(&self) -> &str {
        &self.problem
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.event {
            Some(event) => write!(f, "cannot decode event `{event}`: ")?,
            None => f.write_str("cannot decode event: ")?,
        }
        write!(f, "field `{}`: {}", self.field, self.problem)
    }
}

/// No source: the message already says what serde found (thiserror's rule,
/// a message or a source, never both).
impl std::error::Error for DecodeError {}

/// An event's attributes could not be serialized to JSON.
///
/// This happens only for field types serde cannot write as JSON, such as a
/// map whose keys are not strings. serde's message is the
/// [`source`](std::error::Error::source).
#[derive(thiserror::Error)]
#[error("cannot encode the attributes of event `{event}`")]
pub struct EncodeError {
    event: String,
    #[source]
    source: serde_json::Error,
}

impl fmt::Debug for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_chain(self, f)
    }
}

impl EncodeError {
    pub(crate) fn new(event: &str, source: serde_json::Error) -> Self {
        EncodeError {
            event: event.to_owned(),
            source,
        }
    }

    /// The event whose attributes failed.
    pub fn event(&self) -> &str {
        &self.event
    }
}

/// Writes `error`'s message, then each cause its message does not already
/// include, one per line under `Caused by:`: the way `anyhow` reports. With
/// the alternate flag (`{:#}`), on one line instead, each cause after `: `
/// (the `events` tool's `error:` line).
///
/// It is the `Debug` of this workspace's error types, so that
/// `main() -> Result<(), Box<dyn Error>>` shows a person the sentence rather
/// than a struct dump. Use it for your own errors the same way:
///
/// ```
/// use std::fmt;
///
/// #[derive(thiserror::Error)]
/// #[error("cannot load the settings")]
/// struct SettingsError(#[source] std::io::Error);
///
/// impl fmt::Debug for SettingsError {
///     fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
///         events_core::error::write_chain(self, f)
///     }
/// }
///
/// let err = SettingsError(std::io::Error::other("disk on fire"));
/// assert_eq!(format!("{err:?}"), "cannot load the settings\n\nCaused by:\n    disk on fire");
///
/// // On one line:
/// struct OneLine<'a>(&'a SettingsError);
/// impl fmt::Display for OneLine<'_> {
///     fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
///         events_core::error::write_chain(self.0, f)
///     }
/// }
/// assert_eq!(format!("{:#}", OneLine(&err)), "cannot load the settings: disk on fire");
/// ```
///
/// # Errors
///
/// The formatter's, when writing to it fails.
pub fn write_chain(
    error: &dyn std::error::Error,
    f: &mut std::fmt::Formatter<'_>,
) -> std::fmt::Result {
    let mut shown = error.to_string();
    f.write_str(&shown)?;
    let mut causes = Vec::new();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !shown.contains(&text) {
            shown.push_str(&text);
            causes.push(text);
        }
        source = cause.source();
    }
    if f.alternate() {
        for cause in causes {
            write!(f, ": {cause}")?;
        }
    } else if !causes.is_empty() {
        f.write_str("\n\nCaused by:")?;
        for cause in causes {
            write!(f, "\n    {cause}")?;
        }
    }
    Ok(())
}

/// `error` and the causes it does not already say, on one line
/// ([`write_chain`]'s alternate form): what logs and messages that embed an
/// error show.
pub(crate) fn one_line(error: &dyn std::error::Error) -> String {
    struct Chain<'a>(&'a dyn std::error::Error);
    impl std::fmt::Display for Chain<'_> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write_chain(self.0, f)
        }
    }
    format!("{:#}", Chain(error))
}
