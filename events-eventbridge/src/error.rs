//! The errors of building an [`EventBridgePublisher`](crate::EventBridgePublisher).

/// Why a publisher could not be built.
///
/// Its `Debug` is its message and causes (as `events_core::BusError`'s), so
/// `main() -> Result<(), Box<dyn Error>>` shows the sentence.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum PublisherBuildError {
    /// A configuration value (an `EVENT_BUS_*` variable or builder setting)
    /// cannot be used.
    #[error(transparent)]
    Config(#[from] events_core::ConfigError),
    /// No AWS region: not in `AWS_REGION`, the profile, or the SDK
    /// configuration given.
    #[error(
        "EVENT_BUS_MODE=eventbridge needs an AWS region: set AWS_REGION (e.g. `eu-west-1`), \
         or a region in the AWS profile (AWS_PROFILE, ~/.aws/config)"
    )]
    NoRegion,
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

impl PublisherBuildError {
    pub(crate) fn check<E>(bus: &str, source: E) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        PublisherBuildError::Check {
            bus: bus.to_owned(),
            message: crate::sdk_error::one_line(&source),
            source: Box::new(source),
        }
    }
}

impl std::fmt::Debug for PublisherBuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        events_core::error::write_chain(self, f)
    }
}

/// The old name of [`PublisherBuildError`].
#[deprecated(since = "0.2.0", note = "renamed `PublisherBuildError`")]
pub type Error = PublisherBuildError;

#[cfg(test)]
mod tests {
    /// The old names still build, for one release.
    #[allow(deprecated)]
    #[test]
    fn the_old_names_are_aliases() {
        let err: crate::Error = crate::PublisherBuildError::NoRegion;
        assert!(matches!(err, crate::Error::NoRegion));
        let _: crate::Builder = crate::EventBridgePublisher::builder();
        assert_eq!(crate::TOO_LARGE, crate::EntryError::TooLarge.code());
    }

    #[test]
    fn debug_is_the_sentence() {
        assert_eq!(
            format!("{:?}", super::PublisherBuildError::NoRegion),
            super::PublisherBuildError::NoRegion.to_string()
        );
    }
}
