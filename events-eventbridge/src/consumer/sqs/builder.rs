//! [`SqsConsumerBuilder`] and the environment ([`SqsConsumer::from_env`]): settings checked, client made.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::Client;
use events_core::{ConfigError, EventBus};

use super::consumer::{Observer, SqsConsumer};
use super::error::{ConsumerError, QUEUE_URL_EXPECTED};
use super::settings::{ConsumerSettings, MAX_VISIBILITY_TIMEOUT, MAX_WAIT_TIME};
use crate::consumer::batch::queue_name_of_url;
use crate::consumer::{Processed, Processor};
use crate::dedup::Dedup;

/// Builds an [`SqsConsumer`].
#[derive(Default)]
pub struct SqsConsumerBuilder {
    client: Option<Client>,
    sdk_config: Option<aws_config::SdkConfig>,
    queue_url: Option<String>,
    dedup: Option<Arc<dyn Dedup>>,
    settings: ConsumerSettings,
    observer: Option<Observer>,
    /// `None`: the default, on.
    check_queue: Option<bool>,
}

impl std::fmt::Debug for SqsConsumerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqsConsumerBuilder")
            .field("queue_url", &self.queue_url)
            .field("dedup", &self.dedup.is_some())
            .field("settings", &self.settings)
            .field("check_queue", &self.check_queue.unwrap_or(true))
            .finish_non_exhaustive()
    }
}

pub(super) fn config_error(
    var: &'static str,
    value: impl ToString,
    expected: &'static str,
) -> ConfigError {
    ConfigError {
        var,
        value: value.to_string(),
        expected,
    }
}

impl SqsConsumerBuilder {
    /// The settings so far (from [`SqsConsumer::builder_from_env`], or
    /// given).
    pub fn settings(&self) -> &ConsumerSettings {
        &self.settings
    }

    /// The queue's URL (required; `EVENT_BUS_QUEUE_URL` in [`SqsConsumer::from_env`]).
    pub fn queue_url(mut self, url: impl Into<String>) -> Self {
        self.queue_url = Some(url.into());
        self
    }

    /// The SQS client (default: one from the standard AWS chain).
    pub fn client(mut self, client: Client) -> Self {
        self.client = Some(client);
        self
    }

    /// The AWS configuration a client is built from, when no
    /// [`client`](Self::client) is given.
    pub fn sdk_config(mut self, config: &aws_config::SdkConfig) -> Self {
        self.sdk_config = Some(config.clone());
        self
    }

    /// Skips handlers that already succeeded for an event, per `dedup`.
    pub fn dedup(mut self, dedup: Arc<dyn Dedup>) -> Self {
        self.dedup = Some(dedup);
        self
    }

    /// Calls `observer` with what became of each message (after its
    /// handlers ran, before its delete): for metrics.
    pub fn on_processed(mut self, observer: impl Fn(&Processed) + Send + Sync + 'static) -> Self {
        self.observer = Some(Arc::new(observer));
        self
    }

    /// Messages per ReceiveMessage, 1 to 10.
    pub fn max_messages(mut self, n: i32) -> Self {
        self.settings.max_messages = n;
        self
    }

    /// The long-polling wait of each ReceiveMessage, 0 to 20 s in whole
    /// seconds (default 20 s; `EVENT_BUS_WAIT_SECONDS` in
    /// [`SqsConsumer::from_env`]).
    pub fn wait_time(mut self, wait: Duration) -> Self {
        self.settings.wait_time = wait;
        self
    }

    /// The long-polling wait in seconds.
    #[deprecated(since = "0.2.0", note = "use `wait_time(Duration)`")]
    pub fn wait_seconds(self, seconds: i32) -> Self {
        // A negative wait is kept out of range, for `build` to refuse.
        self.wait_time(u64::try_from(seconds).map_or(Duration::MAX, Duration::from_secs))
    }

    /// The visibility timeout asked for on receive, 1 s to 12 h in whole
    /// seconds, and renewed every half of it while a handler runs (default
    /// 30 s; `EVENT_BUS_VISIBILITY_TIMEOUT` in [`SqsConsumer::from_env`]).
    pub fn visibility_timeout(mut self, timeout: Duration) -> Self {
        self.settings.visibility_timeout = timeout;
        self
    }

    /// Messages in flight at most (at least 1).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.settings.concurrency = n;
        self
    }

    /// How long a graceful shutdown waits for in-flight messages before it
    /// abandons them (default 30 s; `EVENT_BUS_SHUTDOWN_TIMEOUT` in
    /// [`SqsConsumer::from_env`]). A second signal in
    /// [`SqsConsumer::run_until_signal`] stops at once whatever is left.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.settings.shutdown_timeout = timeout;
        self
    }

    /// Whether [`build`](Self::build) checks the queue with one
    /// GetQueueAttributes call (default `true`; `EVENT_BUS_CHECK=false` in
    /// [`SqsConsumer::from_env`]). The consumer's role then needs
    /// `sqs:GetQueueAttributes` on the queue.
    pub fn check_queue(mut self, check: bool) -> Self {
        self.check_queue = Some(check);
        self
    }

    /// Checks the settings and builds the consumer of `bus`'s handlers.
    ///
    /// Without a [`client`](Self::client), an AWS configuration with no
    /// region (`AWS_REGION`, the profile) is refused. Unless
    /// [`check_queue`](Self::check_queue) is `false`, the queue is then
    /// checked with one GetQueueAttributes call.
    ///
    /// # Errors
    ///
    /// - [`ConsumerError::Config`] for a setting out of range (naming its
    ///   variable), or a queue URL that is not a URL;
    ///   [`ConsumerError::NoQueueUrl`] without one.
    /// - [`ConsumerError::NoRegion`] for an AWS configuration with no region.
    /// - [`ConsumerError::QueueNotFound`], [`ConsumerError::QueueAccessDenied`]
    ///   or [`ConsumerError::Check`] when the queue check fails.
    pub async fn build(self, bus: EventBus) -> Result<SqsConsumer, ConsumerError> {
        let s = &self.settings;
        if !(1..=10).contains(&s.max_messages) {
            return Err(config_error("max_messages", s.max_messages, "1 to 10").into());
        }
        if s.wait_time > MAX_WAIT_TIME || s.wait_time.subsec_nanos() != 0 {
            return Err(config_error(
                "EVENT_BUS_WAIT_SECONDS",
                seconds(s.wait_time),
                "0 to 20 whole seconds",
            )
            .into());
        }
        if s.visibility_timeout.is_zero()
            || s.visibility_timeout > MAX_VISIBILITY_TIMEOUT
            || s.visibility_timeout.subsec_nanos() != 0
        {
            return Err(config_error(
                "EVENT_BUS_VISIBILITY_TIMEOUT",
                seconds(s.visibility_timeout),
                "1 to 43200 whole seconds",
            )
            .into());
        }
        if s.concurrency == 0 {
            return Err(config_error("EVENT_BUS_CONSUMER_CONCURRENCY", 0, "at least 1").into());
        }
        let queue_url = match self.queue_url {
            Some(url) if !url.trim().is_empty() => url.trim().to_owned(),
            _ => return Err(ConsumerError::NoQueueUrl),
        };
        if !(queue_url.starts_with("https://") || queue_url.starts_with("http://")) {
            return Err(config_error("EVENT_BUS_QUEUE_URL", queue_url, QUEUE_URL_EXPECTED).into());
        }
        // Without a region every call fails: a start-up error, not a
        // consumer polling for ever. (A client given is used as is.)
        let client_of = |config: &aws_config::SdkConfig| match config.region() {
            Some(_) => Ok(Client::new(config)),
            None => Err(ConsumerError::NoRegion),
        };
        let client = match (self.client, self.sdk_config) {
            (Some(client), _) => client,
            (None, Some(config)) => client_of(&crate::aws::with_http_client(&config))?,
            (None, None) => client_of(&crate::aws::load_sdk_config().await)?,
        };
        let mut processor = Processor::new(bus);
        // Its spans' `messaging.destination.name`.
        if let Some(queue) = queue_name_of_url(&queue_url) {
            processor = processor.with_destination(queue);
        }
        if let Some(dedup) = self.dedup {
            processor = processor.with_dedup(dedup);
        }
        let consumer = SqsConsumer {
            client,
            queue_url,
            processor,
            settings: self.settings,
            counters: Arc::default(),
            observer: self.observer,
        };
        if self.check_queue.unwrap_or(true) {
            consumer.check_queue().await?;
        }
        Ok(consumer)
    }
}

/// A duration as its variable takes it: whole seconds, else as written.
fn seconds(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        d.as_secs().to_string()
    } else {
        format!("{d:?}")
    }
}

/// The value of `var` per `lookup`, unless unset or blank.
fn set(lookup: &impl Fn(&str) -> Option<String>, var: &str) -> Option<String> {
    lookup(var).filter(|v| !v.trim().is_empty())
}

fn env_number<T: std::str::FromStr>(
    lookup: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: T,
    expected: &'static str,
) -> Result<T, ConfigError> {
    match set(lookup, var) {
        Some(v) => v.trim().parse().map_err(|_| config_error(var, v, expected)),
        None => Ok(default),
    }
}

impl SqsConsumer {
    /// A builder.
    pub fn builder() -> SqsConsumerBuilder {
        SqsConsumerBuilder::default()
    }

    /// The twelve-factor path, for `bus`'s handlers:
    ///
    /// | variable | meaning | default |
    /// | --- | --- | --- |
    /// | `EVENT_BUS_QUEUE_URL` | the queue (required) | |
    /// | `EVENT_BUS_CONSUMER_CONCURRENCY` | messages in flight | `10` |
    /// | `EVENT_BUS_WAIT_SECONDS` | long-polling wait, 0 to 20 | `20` |
    /// | `EVENT_BUS_VISIBILITY_TIMEOUT` | seconds, renewed while a handler runs | `30` |
    /// | `EVENT_BUS_SHUTDOWN_TIMEOUT` | how long a graceful shutdown waits for in-flight messages (`500ms`, `30s`, `5m`; a bare number is seconds) | `30s` |
    /// | `EVENT_BUS_DEDUP` | `none`, `memory` or `sqlite` | `none` |
    /// | `EVENT_BUS_DEDUP_PATH` | the SQLite file of `sqlite` | `.events-bus/dedup.db` |
    /// | `EVENT_BUS_CHECK` | `false`: no GetQueueAttributes check of the queue at start-up | `true` for the consumer |
    ///
    /// and the standard AWS chain (`AWS_REGION`, credentials,
    /// `AWS_ENDPOINT_URL`). The queue check is on unless `EVENT_BUS_CHECK`
    /// is `false` (the publisher's DescribeEventBus check is off unless it is
    /// `true`): a consumer of a mistyped queue would otherwise start and
    /// handle nothing.
    ///
    /// # Errors
    ///
    /// As [`builder_from_lookup`](Self::builder_from_lookup) and
    /// [`SqsConsumerBuilder::build`].
    pub async fn from_env(bus: EventBus) -> Result<SqsConsumer, ConsumerError> {
        SqsConsumer::builder_from_env()?.build(bus).await
    }

    /// The builder [`from_env`](Self::from_env) uses, to add to (an
    /// observer, a client).
    ///
    /// # Errors
    ///
    /// As [`builder_from_lookup`](Self::builder_from_lookup), with the
    /// process's environment.
    pub fn builder_from_env() -> Result<SqsConsumerBuilder, ConsumerError> {
        SqsConsumer::builder_from_lookup(|var| std::env::var(var).ok())
    }

    /// The builder [`from_env`](Self::from_env) uses, reading each
    /// variable with `lookup` instead of the process's environment (tests,
    /// or settings from elsewhere).
    ///
    /// # Errors
    ///
    /// [`ConsumerError::Config`] naming the variable when a value cannot be
    /// used (a number that is not one, `EVENT_BUS_CHECK` not a boolean,
    /// `EVENT_BUS_SHUTDOWN_TIMEOUT` not a duration, an unknown
    /// `EVENT_BUS_DEDUP`); [`ConsumerError::Dedup`] when the SQLite
    /// deduplication file cannot be opened.
    pub fn builder_from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<SqsConsumerBuilder, ConsumerError> {
        let mut builder = SqsConsumer::builder()
            .queue_url(lookup("EVENT_BUS_QUEUE_URL").unwrap_or_default())
            .concurrency(env_number(
                &lookup,
                "EVENT_BUS_CONSUMER_CONCURRENCY",
                10,
                "a number of messages, at least 1",
            )?)
            .wait_time(Duration::from_secs(env_number(
                &lookup,
                "EVENT_BUS_WAIT_SECONDS",
                20,
                "0 to 20",
            )?))
            .visibility_timeout(Duration::from_secs(env_number(
                &lookup,
                "EVENT_BUS_VISIBILITY_TIMEOUT",
                30,
                "1 to 43200 seconds",
            )?));
        if let Some(v) = set(&lookup, "EVENT_BUS_SHUTDOWN_TIMEOUT") {
            builder = builder.shutdown_timeout(events_core::config::parse_duration(
                "EVENT_BUS_SHUTDOWN_TIMEOUT",
                &v,
            )?);
        }
        if let Some(v) = set(&lookup, "EVENT_BUS_CHECK") {
            builder = builder.check_queue(events_core::config::parse_bool("EVENT_BUS_CHECK", &v)?);
        }
        let dedup = lookup("EVENT_BUS_DEDUP").unwrap_or_default();
        match dedup.trim().to_ascii_lowercase().as_str() {
            "" | "none" | "off" => {}
            "memory" => builder = builder.dedup(Arc::new(crate::dedup::MemoryDedup::default())),
            #[cfg(feature = "sqlite")]
            "sqlite" => {
                let path = set(&lookup, "EVENT_BUS_DEDUP_PATH")
                    .unwrap_or_else(|| ".events-bus/dedup.db".to_owned());
                if let Some(parent) = std::path::Path::new(&path).parent() {
                    if !parent.as_os_str().is_empty() {
                        let _ = std::fs::create_dir_all(parent);
                    }
                }
                builder = builder.dedup(Arc::new(crate::dedup::SqliteDedup::open(&path)?));
            }
            _ => {
                return Err(config_error(
                    "EVENT_BUS_DEDUP",
                    dedup,
                    "`none`, `memory` or `sqlite` (with the `sqlite` feature)",
                )
                .into())
            }
        }
        Ok(builder)
    }
}
