//! The errors of building an [`EventBridgePublisher`](crate::EventBridgePublisher).

use aws_sdk_eventbridge::error::DisplayErrorContext;

/// Why a publisher could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value (an `EVENT_BUS_*` variable or builder setting)
    /// cannot be used.
    #[error(transparent)]
    Config(#[from] events_core::ConfigError),
    /// The start-up check (`EVENT_BUS_CHECK=true`) found no such bus.
    #[error(
        "event bus `{bus}` does not exist in this account and region (DescribeEventBus: {message}); \
         create it, or set EVENT_BUS_NAME to an existing bus name or ARN"
    )]
    BusNotFound {
        /// The bus name or ARN checked.
        bus: String,
        /// The service's message.
        message: String,
    },
    /// The start-up check could not be made (network, credentials, access).
    #[error("could not check event bus `{bus}` with DescribeEventBus: {message}")]
    Check {
        /// The bus name or ARN checked.
        bus: String,
        /// The error, with its causes.
        message: String,
        /// The SDK's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl Error {
    pub(crate) fn check<E>(bus: &str, source: E) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        Error::Check {
            bus: bus.to_owned(),
            message: DisplayErrorContext(&source).to_string(),
            source: Box::new(source),
        }
    }
}
