//! [`EntryError`]: why EventBridge (or this publisher) did not take one event, as a kind to match.

use events_core::publisher::PublishError;

use crate::retry::RETRYABLE_CODES;

/// Why one event was not accepted, as a kind to match.
///
/// The publisher answers each event with an `events_core`
/// [`PublishError`] (code and message), and the bus keeps what it says: a
/// dead letter's [`Delivery::DeadLettered`](events_core::Delivery) text
/// begins with the code. [`EntryError::of`] and
/// [`EntryError::of_dead_letter`] read them back:
///
/// ```
/// use events_core::publisher::PublishError;
/// use events_eventbridge::EntryError;
///
/// let error = PublishError::permanent("EntryTooLarge", "the event is 300000 bytes ...");
/// assert_eq!(EntryError::of(&error), EntryError::TooLarge);
/// assert_eq!(
///     EntryError::of_dead_letter("EntryTooLarge: the event is 300000 bytes ..."),
///     EntryError::TooLarge
/// );
/// assert_eq!(EntryError::TooLarge.code(), "EntryTooLarge");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EntryError {
    /// Larger on its own than any PutEvents request may be (code
    /// `EntryTooLarge`): never sent, and permanent (the bus dead-letters
    /// it). The message names its size and the limit.
    TooLarge,
    /// `ThrottlingException` or `InternalFailure` still, after the
    /// [`RetryPolicy`](crate::RetryPolicy): retryable (the bus keeps the
    /// event in its failover store).
    Retryable(String),
    /// The event's PutEvents call failed as a whole (network, 5xx after the
    /// SDK's retries, credentials), or was cancelled: retryable.
    CallFailed(String),
    /// Any other per-entry code (`MalformedDetail`, `AccessDenied`, ...):
    /// refused for good.
    Refused(String),
}

impl EntryError {
    /// The code of [`EntryError::TooLarge`].
    pub const TOO_LARGE_CODE: &'static str = "EntryTooLarge";

    /// The kind of `error`, one of this publisher's answers.
    pub fn of(error: &PublishError) -> Self {
        Self::from_code(&error.code, error.permanent)
    }

    /// The kind of a dead letter's error text (`code: message`, as
    /// [`Delivery::DeadLettered`](events_core::Delivery) and the store keep
    /// it): [`TooLarge`](Self::TooLarge) or [`Refused`](Self::Refused).
    pub fn of_dead_letter(text: &str) -> Self {
        let code = text.split_once(": ").map_or(text, |(code, _)| code);
        Self::from_code(code, true)
    }

    fn from_code(code: &str, permanent: bool) -> Self {
        match code {
            Self::TOO_LARGE_CODE => EntryError::TooLarge,
            _ if permanent => EntryError::Refused(code.to_owned()),
            _ if RETRYABLE_CODES.contains(&code) => EntryError::Retryable(code.to_owned()),
            _ => EntryError::CallFailed(code.to_owned()),
        }
    }

    /// Its code: `EntryTooLarge`, or the service's code (or the kind of
    /// call failure, e.g. `TimeoutError`).
    pub fn code(&self) -> &str {
        match self {
            EntryError::TooLarge => Self::TOO_LARGE_CODE,
            EntryError::Retryable(code)
            | EntryError::CallFailed(code)
            | EntryError::Refused(code) => code,
        }
    }
}

#[cfg(test)]
mod tests {
    use events_core::publisher::PublishError;

    use super::EntryError;

    #[test]
    fn each_answer_has_its_kind() {
        let kind = |e: PublishError| EntryError::of(&e);
        assert_eq!(
            kind(PublishError::permanent("EntryTooLarge", "m")),
            EntryError::TooLarge
        );
        assert_eq!(
            kind(PublishError::retryable("ThrottlingException", "m")),
            EntryError::Retryable("ThrottlingException".into())
        );
        assert_eq!(
            kind(PublishError::retryable("TimeoutError", "m")),
            EntryError::CallFailed("TimeoutError".into())
        );
        assert_eq!(
            kind(PublishError::permanent("MalformedDetail", "m")),
            EntryError::Refused("MalformedDetail".into())
        );
        assert_eq!(
            EntryError::of_dead_letter("MalformedDetail: bad"),
            EntryError::Refused("MalformedDetail".into())
        );
    }
}
