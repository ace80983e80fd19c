//! What an AWS SDK error means, for the publisher and the consumer alike: its fault (whether retrying helps), its code, its one-line text.

use aws_sdk_eventbridge::error::{ProvideErrorMetadata, SdkError};

/// Service error codes that retrying does not fix: access, credentials,
/// address, the queue's KMS key.
const PERMANENT_CODES: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "InvalidAddress",
    "InvalidSecurity",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "MissingAuthenticationToken",
    "IncompleteSignature",
    "KmsAccessDenied",
    "KMS.AccessDeniedException",
    "KmsDisabled",
    "KMS.DisabledException",
    "KmsNotFound",
    "KMS.NotFoundException",
];

/// Service error codes of access and credentials.
const ACCESS_CODES: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "MissingAuthenticationToken",
    "IncompleteSignature",
];

/// What retrying an AWS call can do about its error.
#[cfg_attr(not(feature = "sqs"), allow(dead_code))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// The resource does not exist (one of the codes `classify` is given).
    Gone,
    /// Retrying does not fix it (access, credentials, region, address).
    Permanent,
    /// It may pass (network, throttling, 5xx).
    Transient,
}

/// The fault of `err`; `gone` are the service's codes for "no such
/// resource" (e.g. SQS's `QueueDoesNotExist`).
#[cfg_attr(not(feature = "sqs"), allow(dead_code))]
pub(crate) fn classify<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>, gone: &[&str]) -> Fault {
    match err {
        SdkError::ServiceError(_) => match err.code() {
            Some(code) if gone.contains(&code) => Fault::Gone,
            Some(code) if PERMANENT_CODES.contains(&code) => Fault::Permanent,
            _ => Fault::Transient,
        },
        // The request could not be made: a bad URL or setting.
        SdkError::ConstructionFailure(_) => Fault::Permanent,
        // No region, no credentials (the SDK's own "other" failures carry
        // no retry kind) or a request the connector refuses; network
        // failures are `io` or `timeout`.
        SdkError::DispatchFailure(d) if d.is_user() || (d.is_other() && d.as_other().is_none()) => {
            Fault::Permanent
        }
        _ => Fault::Transient,
    }
}

/// Whether `err` is a refusal of access or credentials.
#[cfg_attr(not(feature = "sqs"), allow(dead_code))]
pub(crate) fn is_access_denied<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    matches!(err, SdkError::ServiceError(_))
        && err.code().is_some_and(|code| ACCESS_CODES.contains(&code))
}

/// The code of a failed call: the service's code, or the kind of failure
/// (`TimeoutError`, `DispatchFailure`, ...).
pub(crate) fn call_code<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> &str {
    match err {
        SdkError::ServiceError(_) => err.code().unwrap_or("ServiceError"),
        SdkError::TimeoutError(_) => "TimeoutError",
        SdkError::DispatchFailure(_) => "DispatchFailure",
        SdkError::ResponseError(_) => "ResponseError",
        SdkError::ConstructionFailure(_) => "ConstructionFailure",
        _ => "SdkError",
    }
}

/// One line for an SDK error: `code: message` for a service error (not the
/// SDK's Debug tree), else its chain of causes ([`one_line`]).
#[cfg_attr(not(feature = "sqs"), allow(dead_code))]
pub(crate) fn describe<E, R>(err: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    match err {
        SdkError::ServiceError(_) => match (err.code(), err.message()) {
            (Some(code), Some(message)) => format!("{code}: {message}"),
            (Some(code), None) => code.to_owned(),
            _ => one_line(err),
        },
        _ => one_line(err),
    }
}

/// An error's message and its causes' (`a: b: c`), each once, as
/// [`events_core::error::write_chain`] walks them: the SDK's chain without
/// the `Debug` dump `DisplayErrorContext` appends.
pub(crate) fn one_line(err: &(dyn std::error::Error + 'static)) -> String {
    events_core::__private::one_line(err)
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn one_line_names_each_cause_once() {
        let err = Outer(std::io::Error::other("inner"));
        assert_eq!(one_line(&err), "outer: inner");
        assert_eq!(one_line(&std::io::Error::other("alone")), "alone");
    }
}
