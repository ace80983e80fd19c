//! [`EventBridgePublisher`]: events-core's [`Publisher`] on PutEvents.

use std::sync::Arc;

use aws_sdk_eventbridge::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_eventbridge::Client;
use events_core::publisher::{Accepted, BoxFuture, PublishError, Publisher, PublisherProvider};
use events_core::{wire, BusConfig, ConfigError, RawEvent};
use futures_util::stream::{self, StreamExt};
use tracing::Instrument;

use crate::batch::{self, DEFAULT_MAX_REQUEST_BYTES, MAX_REQUEST_BYTES};
use crate::error::Error;
use crate::retry::{is_retryable, RetryPolicy};

/// How many PutEvents calls one `publish` runs at once, by default.
pub const DEFAULT_CONCURRENCY: usize = 8;

/// The error code of an event too large for any PutEvents request.
pub const TOO_LARGE: &str = "EntryTooLarge";

/// What one event became: accepted with EventBridge's event id, or failed.
pub(crate) type EntryResult = Result<Option<String>, PublishError>;

/// Publishes events to an EventBridge bus with PutEvents.
///
/// - Batches: at most 10 entries and at most the request size limit per call
///   (256 KiB unless configured, up to 1 MiB), calls run with bounded
///   concurrency, results come back in the caller's order.
/// - An event larger than the limit on its own is never sent: a permanent
///   failure naming its size and the limit (the bus dead-letters it).
/// - Per-entry `ThrottlingException` and `InternalFailure` are re-sent (only
///   those entries) under the [`RetryPolicy`]; any other per-entry code is
///   permanent. A call that fails as a whole (network, 5xx after the SDK's
///   own retries, credentials) fails each of its entries as retryable (the
///   bus keeps them in its failover store).
/// - No call but PutEvents on the publish path; DescribeEventBus only once,
///   at build time, if [`Builder::check_bus`] (or `EVENT_BUS_CHECK=true`).
#[derive(Debug, Clone)]
pub struct EventBridgePublisher {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    client: Client,
    bus: String,
    source: Option<String>,
    max_request_bytes: usize,
    retry: RetryPolicy,
    concurrency: usize,
}

/// Builds an [`EventBridgePublisher`]; see [`EventBridgePublisher::builder`].
#[derive(Debug, Default)]
#[must_use]
pub struct Builder {
    bus: Option<String>,
    source: Option<String>,
    client: Option<Client>,
    sdk_config: Option<aws_config::SdkConfig>,
    max_request_bytes: Option<usize>,
    retry: Option<RetryPolicy>,
    concurrency: Option<usize>,
    check_bus: bool,
}

/// The variables this crate reads beside events-core's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvSettings {
    /// `EVENT_BUS_MAX_REQUEST_BYTES`: the PutEvents request size limit.
    pub max_request_bytes: usize,
    /// `EVENT_BUS_CHECK`: check the bus with DescribeEventBus at start-up.
    pub check_bus: bool,
    /// `EVENT_BUS_CONCURRENCY`: PutEvents calls in flight per publish.
    pub concurrency: usize,
}

impl Default for EnvSettings {
    fn default() -> Self {
        EnvSettings {
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            check_bus: false,
            concurrency: DEFAULT_CONCURRENCY,
        }
    }
}

fn parse_in_range(
    var: &'static str,
    value: &str,
    range: std::ops::RangeInclusive<usize>,
    expected: &'static str,
) -> Result<usize, ConfigError> {
    value
        .trim()
        .parse::<usize>()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| ConfigError {
            var,
            value: value.to_owned(),
            expected,
        })
}

impl EnvSettings {
    /// Reads the settings through `lookup`; unset ones keep their defaults.
    ///
    /// ```
    /// use events_eventbridge::EnvSettings;
    /// let err = EnvSettings::from_lookup(|v| (v == "EVENT_BUS_MAX_REQUEST_BYTES").then(|| "2MB".into())).unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     "EVENT_BUS_MAX_REQUEST_BYTES=`2MB` is not valid: expected a number of bytes from 1 to 1048576 (1 MiB), e.g. `262144`"
    /// );
    /// ```
    /// Empty values count as unset, as in [`BusConfig::from_lookup`].
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let lookup = |var: &str| lookup(var).filter(|v| !v.trim().is_empty());
        let mut settings = EnvSettings::default();
        if let Some(v) = lookup("EVENT_BUS_MAX_REQUEST_BYTES") {
            settings.max_request_bytes = parse_in_range(
                "EVENT_BUS_MAX_REQUEST_BYTES",
                &v,
                1..=MAX_REQUEST_BYTES,
                "a number of bytes from 1 to 1048576 (1 MiB), e.g. `262144`",
            )?;
        }
        if let Some(v) = lookup("EVENT_BUS_CHECK") {
            settings.check_bus = match v.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => true,
                "false" | "0" | "no" | "off" => false,
                _ => {
                    return Err(ConfigError {
                        var: "EVENT_BUS_CHECK",
                        value: v,
                        expected: "`true` or `false` (also `1`/`0`, `yes`/`no`, `on`/`off`)",
                    })
                }
            };
        }
        if let Some(v) = lookup("EVENT_BUS_CONCURRENCY") {
            settings.concurrency = parse_in_range(
                "EVENT_BUS_CONCURRENCY",
                &v,
                1..=1024,
                "a number of concurrent PutEvents calls from 1 to 1024, e.g. `8`",
            )?;
        }
        Ok(settings)
    }
}

impl Builder {
    /// The bus: a name or an ARN (default `default`).
    pub fn bus(mut self, name_or_arn: impl Into<String>) -> Self {
        self.bus = Some(name_or_arn.into());
        self
    }

    /// The PutEvents `Source` of every event; by default `{company}.{service}`
    /// of each event's name.
    pub fn source(mut self, source: impl Into<String>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// The client to send with (takes precedence over [`sdk_config`](Self::sdk_config)).
    pub fn client(mut self, client: Client) -> Self {
        self.client = Some(client);
        self
    }

    /// The AWS configuration to build the client from; without this or
    /// [`client`](Self::client), the standard chain (`aws_config::load_defaults`:
    /// environment, profile, container and instance credentials,
    /// `AWS_REGION`, `AWS_ENDPOINT_URL`) is loaded.
    pub fn sdk_config(mut self, config: &aws_config::SdkConfig) -> Self {
        self.sdk_config = Some(config.clone());
        self
    }

    /// The PutEvents request size limit, 1 byte to 1 MiB (default 256 KiB).
    pub fn max_request_bytes(mut self, bytes: usize) -> Self {
        self.max_request_bytes = Some(bytes);
        self
    }

    /// How per-entry throttling and internal failures are re-sent.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// PutEvents calls in flight at once for one publish (default 8).
    pub fn concurrency(mut self, calls: usize) -> Self {
        self.concurrency = Some(calls);
        self
    }

    /// Checks once, when building, that the bus exists (DescribeEventBus).
    pub fn check_bus(mut self, check: bool) -> Self {
        self.check_bus = check;
        self
    }

    /// Builds the publisher (and runs the start-up check if asked). Without
    /// a [`client`](Self::client), an AWS configuration with no region
    /// (`AWS_REGION`, the profile) is refused: [`Error::NoRegion`].
    pub async fn build(self) -> Result<EventBridgePublisher, Error> {
        let bus = self.bus.unwrap_or_else(|| "default".to_owned());
        if bus.is_empty() {
            return Err(ConfigError {
                var: "EVENT_BUS_NAME",
                value: bus,
                expected: "an EventBridge bus name or ARN",
            }
            .into());
        }
        if let Some(source) = &self.source {
            events_core::config::check_source("EVENT_BUS_SOURCE", source)?;
        }
        let max_request_bytes = self.max_request_bytes.unwrap_or(DEFAULT_MAX_REQUEST_BYTES);
        if !(1..=MAX_REQUEST_BYTES).contains(&max_request_bytes) {
            return Err(ConfigError {
                var: "EVENT_BUS_MAX_REQUEST_BYTES",
                value: max_request_bytes.to_string(),
                expected: "a number of bytes from 1 to 1048576 (1 MiB), e.g. `262144`",
            }
            .into());
        }
        let concurrency = self.concurrency.unwrap_or(DEFAULT_CONCURRENCY);
        if concurrency == 0 {
            return Err(ConfigError {
                var: "EVENT_BUS_CONCURRENCY",
                value: "0".to_owned(),
                expected: "a number of concurrent PutEvents calls from 1 to 1024, e.g. `8`",
            }
            .into());
        }
        let retry = self.retry.unwrap_or_default();
        // Without a region every call fails: a start-up error, not a
        // failover of every event. (A client given as is is used as is.)
        let client_of = |config: &aws_config::SdkConfig| match config.region() {
            Some(_) => Ok(Client::new(config)),
            None => Err(Error::NoRegion),
        };
        let client = match (self.client, self.sdk_config) {
            (Some(client), _) => client,
            (None, Some(config)) => client_of(&config)?,
            (None, None) => {
                client_of(&aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await)?
            }
        };
        let publisher = EventBridgePublisher {
            inner: Arc::new(Inner {
                client,
                bus,
                source: self.source,
                max_request_bytes,
                retry: RetryPolicy {
                    max_attempts: retry.max_attempts.max(1),
                    ..retry
                },
                concurrency,
            }),
        };
        if self.check_bus {
            publisher.check_bus().await?;
        }
        Ok(publisher)
    }
}

impl EventBridgePublisher {
    /// A builder with the defaults: bus `default`, source from each event's
    /// name, the standard AWS chain, 256 KiB, [`RetryPolicy::default`], 8
    /// calls at once, no start-up check.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// The twelve-factor path: [`BusConfig::from_env`] (`EVENT_BUS_NAME`,
    /// `EVENT_BUS_SOURCE`), [`EnvSettings`] (`EVENT_BUS_MAX_REQUEST_BYTES`,
    /// `EVENT_BUS_CHECK`, `EVENT_BUS_CONCURRENCY`) and the standard AWS chain
    /// (`AWS_REGION`, credentials, `AWS_ENDPOINT_URL`, `AWS_MAX_ATTEMPTS`).
    pub async fn from_env() -> Result<Self, Error> {
        Self::from_config(&BusConfig::from_env()?).await
    }

    /// As [`from_env`](Self::from_env), with the bus settings given.
    pub async fn from_config(config: &BusConfig) -> Result<Self, Error> {
        let settings = EnvSettings::from_lookup(|var| std::env::var(var).ok())?;
        let mut builder = Self::builder()
            .bus(config.bus_name.clone())
            .max_request_bytes(settings.max_request_bytes)
            .concurrency(settings.concurrency)
            .check_bus(settings.check_bus);
        if let Some(source) = &config.source {
            builder = builder.source(source.clone());
        }
        builder.build().await
    }

    /// The bus name or ARN events go to.
    pub fn bus(&self) -> &str {
        &self.inner.bus
    }

    /// The PutEvents request size limit in bytes.
    pub fn max_request_bytes(&self) -> usize {
        self.inner.max_request_bytes
    }

    /// The client used.
    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    /// Checks that the bus exists with one DescribeEventBus call.
    pub async fn check_bus(&self) -> Result<(), Error> {
        let bus = &self.inner.bus;
        match self
            .inner
            .client
            .describe_event_bus()
            .name(bus)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(err) if err.code() == Some("ResourceNotFoundException") => {
                Err(Error::BusNotFound {
                    bus: bus.clone(),
                    message: err.message().unwrap_or("not found").to_owned(),
                })
            }
            Err(err) => Err(Error::check(bus, err)),
        }
    }

    /// Publishes `events`; one result per event, in order: `Ok` with
    /// EventBridge's event id, or the failure.
    pub(crate) async fn put(&self, events: &[RawEvent]) -> Vec<EntryResult> {
        let inner = &self.inner;
        let entries: Vec<wire::Entry> = events
            .iter()
            .map(|e| wire::entry(e, &wire::source_of(e, inner.source.as_deref())))
            .collect();
        let sizes: Vec<usize> = entries.iter().map(wire::Entry::size).collect();
        let plan = batch::plan(&sizes, inner.max_request_bytes);
        let mut results: Vec<Option<EntryResult>> = vec![None; events.len()];
        for &i in &plan.too_large {
            tracing::warn!(
                event = %events[i].name, id = %events[i].id, size = sizes[i],
                limit = inner.max_request_bytes,
                "event too large for any PutEvents request; not sent"
            );
            results[i] = Some(Err(PublishError::permanent(
                TOO_LARGE,
                format!(
                    "the event is {} bytes as PutEvents counts them (Source + DetailType + Detail), \
                     more than the {}-byte request limit (EVENT_BUS_MAX_REQUEST_BYTES, at most 1048576)",
                    sizes[i], inner.max_request_bytes
                ),
            )));
        }
        let entries = &entries;
        let mut calls = stream::iter(plan.calls)
            .map(|indices| {
                let span =
                    tracing::debug_span!("put_events", bus = %inner.bus, entries = indices.len());
                self.send_call(indices, entries).instrument(span)
            })
            .buffer_unordered(inner.concurrency);
        while let Some(done) = calls.next().await {
            for (i, result) in done {
                results[i] = Some(result);
            }
        }
        results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(PublishError::retryable(
                        "NotSent",
                        "the event was in no PutEvents call",
                    ))
                })
            })
            .collect()
    }

    /// Sends one planned call, re-sending only the retryable entries.
    async fn send_call(
        &self,
        indices: Vec<usize>,
        entries: &[wire::Entry],
    ) -> Vec<(usize, EntryResult)> {
        let inner = &self.inner;
        let first_send = tokio::time::Instant::now();
        let mut done = Vec::with_capacity(indices.len());
        let mut pending = indices;
        let mut attempt = 1u32;
        loop {
            let request: Vec<PutEventsRequestEntry> = pending
                .iter()
                .map(|&i| {
                    let e = &entries[i];
                    PutEventsRequestEntry::builder()
                        .event_bus_name(&inner.bus)
                        .source(&e.source)
                        .detail_type(&e.detail_type)
                        .detail(&e.detail)
                        .build()
                })
                .collect();
            let output = match inner
                .client
                .put_events()
                .set_entries(Some(request))
                .send()
                .await
            {
                Ok(output) => output,
                Err(err) => {
                    let error = call_error(&err);
                    tracing::warn!(attempt, entries = pending.len(), error = %error, "PutEvents call failed");
                    done.extend(pending.into_iter().map(|i| (i, Err(error.clone()))));
                    return done;
                }
            };
            let results = output.entries();
            let mut retry: Vec<(usize, PublishError)> = Vec::new();
            for (pos, &i) in pending.iter().enumerate() {
                match results.get(pos) {
                    Some(r) if r.error_code().is_none() => {
                        done.push((i, Ok(r.event_id().map(str::to_owned))));
                    }
                    Some(r) => {
                        let code = r.error_code().unwrap_or_default();
                        let message = r.error_message().unwrap_or_default();
                        if is_retryable(code) {
                            retry.push((i, PublishError::retryable(code, message)));
                        } else {
                            tracing::warn!(code, message, "PutEvents refused an entry for good");
                            done.push((i, Err(PublishError::permanent(code, message))));
                        }
                    }
                    None => retry.push((
                        i,
                        PublishError::retryable(
                            "MissingResult",
                            "PutEvents answered with fewer result entries than it was sent",
                        ),
                    )),
                }
            }
            if retry.is_empty() {
                return done;
            }
            attempt += 1;
            let delay = inner.retry.delay(attempt);
            if attempt > inner.retry.max_attempts
                || first_send.elapsed() + delay > inner.retry.max_elapsed
            {
                tracing::warn!(
                    attempts = attempt - 1,
                    entries = retry.len(),
                    "PutEvents entries still throttled or failing; giving them back for failover"
                );
                done.extend(retry.into_iter().map(|(i, e)| (i, Err(e))));
                return done;
            }
            tracing::debug!(
                attempt,
                entries = retry.len(),
                delay_ms = delay.as_millis() as u64,
                "re-sending entries"
            );
            tokio::time::sleep(delay).await;
            pending = retry.into_iter().map(|(i, _)| i).collect();
        }
    }
}

/// A failed call as each of its entries' error: retryable, with the
/// service's code when there is one.
fn call_error<E, R>(err: &SdkError<E, R>) -> PublishError
where
    E: std::error::Error + ProvideErrorMetadata + 'static,
    R: std::fmt::Debug + 'static,
{
    let code = match err {
        SdkError::ServiceError(_) => err.code().unwrap_or("ServiceError"),
        SdkError::TimeoutError(_) => "TimeoutError",
        SdkError::DispatchFailure(_) => "DispatchFailure",
        SdkError::ResponseError(_) => "ResponseError",
        SdkError::ConstructionFailure(_) => "ConstructionFailure",
        _ => "SdkError",
    };
    let message = match err {
        SdkError::ServiceError(_) => err.message().map(str::to_owned),
        _ => None,
    };
    PublishError::retryable(code, message.unwrap_or_else(|| error_chain(err)))
}

/// An error's message and its causes' (`a: b: c`), each once: the SDK's
/// Display chain without the `Debug` dump `DisplayErrorContext` appends.
pub(crate) fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

impl Publisher for EventBridgePublisher {
    fn name(&self) -> &str {
        "eventbridge"
    }

    fn publish<'a>(
        &'a self,
        events: &'a [RawEvent],
    ) -> BoxFuture<'a, Vec<Result<Accepted, PublishError>>> {
        Box::pin(async move {
            self.put(events)
                .await
                .into_iter()
                .map(|r| r.map(|remote_id| Accepted { remote_id }))
                .collect()
        })
    }
}

fn build_from_config(
    config: &BusConfig,
) -> BoxFuture<'static, Result<Arc<dyn Publisher>, PublishError>> {
    let config = config.clone();
    Box::pin(async move {
        match EventBridgePublisher::from_config(&config).await {
            Ok(publisher) => Ok(Arc::new(publisher) as Arc<dyn Publisher>),
            Err(err) => Err(PublishError::permanent("", err.to_string())),
        }
    })
}

inventory::submit! {
    PublisherProvider { mode: "eventbridge", build: build_from_config }
}
