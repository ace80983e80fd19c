//! What an operator reads when eventbridge mode goes wrong (items 7, 8, 9
//! and 10 of the new-user trial): start-up errors that name the fix, and
//! failover errors (returned and stored) as the SDK's messages, never its
//! `Debug` dump.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use aws_config::BehaviorVersion;
use aws_sdk_eventbridge::config::retry::RetryConfig;
use aws_sdk_eventbridge::config::{Credentials, Region};
use events_aws_tests::moto::Moto;
use events_core::store::{EventState, EventStore};
use events_core::{BusError, Delivery, Event, EventBus, Mode, SqliteStore};
use events_eventbridge::EventBridgePublisher;
use events_examples::domain::events::CompanyCreated;

fn company() -> Event<CompanyCreated> {
    Event::new(CompanyCreated {
        company_id: uuid::Uuid::new_v4(),
        company_name: "acme".into(),
        country_id: uuid::Uuid::new_v4(),
    })
}

/// The example's publisher as a separate process in eventbridge mode, with
/// no AWS variable, profile or instance metadata to find a region in.
fn publisher_without_aws(home: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_company_publisher"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("AWS_CONFIG_FILE", home.join("no-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join("no-credentials"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("EVENT_BUS_MODE", "eventbridge")
        .env("EVENT_BUS_STORE_PATH", home.join("events.db"))
        .args(["publish", "1"])
        .stdin(Stdio::null());
    cmd
}

/// Item 8: `build()` with the provider linked says to use `connect`.
#[test]
fn build_in_eventbridge_mode_with_the_provider_linked_says_use_connect() {
    // The provider is linked: this file uses the crate.
    let _ = EventBridgePublisher::builder;
    let err = EventBus::builder()
        .mode(Mode::EventBridge)
        .discover(false)
        .in_memory_store()
        .build()
        .unwrap_err();
    assert!(
        matches!(
            err,
            BusError::NotConnected {
                mode: Mode::EventBridge
            }
        ),
        "{err}"
    );
    let text = err.to_string();
    assert!(text.contains("`.connect().await`"), "{text}");
    assert!(!text.contains("not built into this program"), "{text}");
}

/// Item 7: no region anywhere fails the start-up, naming AWS_REGION,
/// instead of a bus that says it is ready and fails every event over.
#[test]
fn no_region_fails_the_start_up_naming_aws_region() {
    let home = tempfile::tempdir().unwrap();
    let out = publisher_without_aws(home.path()).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the start-up must fail: {stderr}");
    assert!(out.stdout.is_empty(), "nothing was published: {stderr}");
    assert!(
        stderr.contains("cannot set up the eventbridge publisher")
            && stderr.contains("needs an AWS region: set AWS_REGION"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_publisher_from_an_sdk_config_without_region_is_refused() {
    let config = aws_config::SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .build();
    let err = EventBridgePublisher::builder()
        .sdk_config(&config)
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(err, events_eventbridge::PublisherBuildError::NoRegion),
        "{err:?}"
    );
}

/// Item 9: a setup error reads as the sentence, without an internal code.
#[test]
fn a_setup_error_has_no_internal_code() {
    let home = tempfile::tempdir().unwrap();
    let out = publisher_without_aws(home.path())
        .env("EVENT_BUS_CONCURRENCY", "0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(
            "cannot set up the eventbridge publisher: EVENT_BUS_CONCURRENCY=`0` is not valid"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("EventBridgeSetup"), "{stderr}");
}

/// Item 9: a connection refused fails over with the SDK's messages, no
/// `Debug` dump.
#[tokio::test]
async fn a_dead_endpoint_fails_over_with_the_messages_only() {
    let config = aws_config::defaults(BehaviorVersion::latest())
        .http_client(events_eventbridge::https_client())
        .region(Region::new("us-east-1"))
        .endpoint_url("http://127.0.0.1:1")
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .retry_config(RetryConfig::disabled())
        .load()
        .await;
    let publisher = EventBridgePublisher::builder()
        .sdk_config(&config)
        .build()
        .await
        .unwrap();
    let bus = EventBus::builder()
        .mode(Mode::EventBridge)
        .discover(false)
        .in_memory_store()
        .publisher(Arc::new(publisher))
        .build()
        .unwrap();
    let out = bus.publish(company()).await.unwrap();
    let Delivery::FailedOver { error } = out.delivery() else {
        panic!("{out:?}");
    };
    assert!(error.starts_with("DispatchFailure: "), "{error}");
    assert!(error.contains("onnection refused"), "{error}");
    for dump in ["{", "DispatchFailure(", "ConnectorError"] {
        assert!(!error.contains(dump), "a Debug dump: {error}");
    }
}

/// Items 9 and 10 against moto: a missing bus fails over with the code and
/// the service's message, and the store records that attempt and error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_bus_fails_over_with_code_and_message_recorded_in_the_store() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path().join("events.db")).unwrap());
    let publisher = EventBridgePublisher::builder()
        .bus("no-such-bus")
        .client(moto.eventbridge().await)
        .build()
        .await
        .unwrap();
    let bus = EventBus::builder()
        .mode(Mode::EventBridge)
        .discover(false)
        .store(store.clone())
        .publisher(Arc::new(publisher))
        .build()
        .unwrap();
    let out = bus.publish(company()).await.unwrap();
    let Delivery::FailedOver { error } = out.delivery() else {
        panic!("{out:?}");
    };
    assert!(
        error.starts_with("ResourceNotFoundException: ") && error.contains("no-such-bus"),
        "{error}"
    );
    for dump in ["{", "service error", "unhandled error"] {
        assert!(!error.contains(dump), "a Debug dump: {error}");
    }
    let stored = store.get(out.id().clone()).await.unwrap().unwrap();
    assert_eq!(stored.state, EventState::Pending);
    assert_eq!(stored.attempts, 1, "{stored:?}");
    assert_eq!(stored.last_error.as_deref(), Some(error.as_str()));
}
