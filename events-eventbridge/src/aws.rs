//! The AWS configuration every client of this crate is built from.
//!
//! The AWS crates are built without their default HTTPS client (rustls on
//! aws-lc, whose C build is the largest single cost of a clean build); this
//! crate brings its own: hyper 1 and rustls on ring, the platform's trusted
//! certificates, plain HTTP too (moto, LocalStack). [`load_sdk_config`] is
//! `aws_config::load_defaults` with that client, so the credential providers
//! that call out (instance metadata, containers) use it as well.

use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_http_client::Builder;
use aws_smithy_runtime_api::client::http::SharedHttpClient;

/// The HTTPS client (hyper 1, rustls on ring) this crate's clients use.
pub fn https_client() -> SharedHttpClient {
    Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// The standard AWS configuration chain (environment, profile, container
/// and instance credentials, `AWS_REGION`, `AWS_ENDPOINT_URL`,
/// `AWS_MAX_ATTEMPTS`) with [`https_client`]: what
/// [`EventBridgePublisher`](crate::EventBridgePublisher) and
/// `SqsConsumer` load when given no client or configuration.
///
/// An `SdkConfig` you build yourself needs an HTTP client too: start from
/// `aws_config::defaults(..).http_client(https_client())`, or enable the AWS
/// crates' `default-https-client` feature in your own `Cargo.toml`.
pub async fn load_sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(https_client())
        .load()
        .await
}

/// `config` as given if it has an HTTP client, else with [`https_client`]
/// (a configuration built by hand, without the AWS crates' default client).
pub(crate) fn with_http_client(config: &SdkConfig) -> SdkConfig {
    if config.http_client().is_some() {
        config.clone()
    } else {
        config.to_builder().http_client(https_client()).build()
    }
}
