//! What retrying an SQS call can do about its error, and its one-line text.

use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};

/// Service error codes meaning the queue does not exist (the JSON and the
/// query protocol's names).
const QUEUE_GONE_CODES: &[&str] = &[
    "QueueDoesNotExist",
    "AWS.SimpleQueueService.NonExistentQueue",
];

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

/// Service error codes of access and credentials (the start-up check's
/// [`ConsumerError::QueueAccessDenied`](super::ConsumerError::QueueAccessDenied)).
pub(super) const ACCESS_CODES: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "MissingAuthenticationToken",
    "IncompleteSignature",
];

/// What retrying an SQS call can do about its error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fault {
    /// The queue does not exist.
    QueueGone,
    /// Retrying does not fix it (access, credentials, region, address).
    Permanent,
    /// It may pass (network, throttling, 5xx).
    Transient,
}

pub(super) fn classify<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> Fault {
    match err {
        SdkError::ServiceError(_) => match err.code() {
            Some(code) if QUEUE_GONE_CODES.contains(&code) => Fault::QueueGone,
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

/// One line for an SDK error: `code: message` for a service error (not the
/// SDK's Debug tree), else its chain of causes.
pub(super) fn describe<E, R>(err: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    match err {
        SdkError::ServiceError(_) => match (err.code(), err.message()) {
            (Some(code), Some(message)) => format!("{code}: {message}"),
            (Some(code), None) => code.to_owned(),
            _ => crate::publisher::error_chain(err),
        },
        _ => crate::publisher::error_chain(err),
    }
}
