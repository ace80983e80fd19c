//! [`EventBridgePublisher`]: events-core's [`Publisher`] on PutEvents.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_eventbridge::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_eventbridge::Client;
use events_core::publisher::{Accepted, BoxFuture, PublishError, Publisher, PublisherProvider};
use events_core::{wire, BusConfig, ConfigError, RawEvent};
use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::time::Instant;
use tracing::Instrument;

use crate::batch::{DEFAULT_MAX_REQUEST_BYTES, MAX_REQUEST_BYTES, MIN_REQUEST_BYTES};
use crate::coalesce::{Caller, CallerGuard, EntryResult, InFlight, Queue, Queued};
use crate::entry_error::EntryError;
use crate::error::PublisherBuildError;
use crate::retry::{is_retryable, RetryPolicy};
use crate::sdk_error::{call_code, one_line};

/// How many PutEvents calls a publisher runs at once, by default.
pub const DEFAULT_CONCURRENCY: usize = 8;

/// How long an event waits, by default, for others to share its PutEvents
/// call when the call is not full (see [`EventBridgePublisherBuilder::linger`]).
pub const DEFAULT_LINGER: Duration = Duration::from_millis(1);

/// The longest linger accepted.
pub const MAX_LINGER: Duration = Duration::from_secs(1);

/// The error code of an event too large for any PutEvents request.
#[deprecated(
    since = "0.2.0",
    note = "match `EntryError::of(&error) == EntryError::TooLarge`"
)]
pub const TOO_LARGE: &str = EntryError::TOO_LARGE_CODE;

/// Publishes events to an EventBridge bus with PutEvents.
///
/// - Batches: at most 10 entries and at most the request size limit per call
///   (256 KiB unless configured, up to 1 MiB), calls run with bounded
///   concurrency, results come back in the caller's order.
/// - Concurrent publishes share calls: each publish queues its entries and
///   whichever publish finds a free call slot sends the next call's worth,
///   of anyone's entries; a call that is not full waits at most the
///   [linger](EventBridgePublisherBuilder::linger) for more. Each publish gets exactly its own
///   results; one that is cancelled never leaves the others waiting.
/// - An event larger than the limit on its own is never sent: a permanent
///   failure naming its size and the limit (the bus dead-letters it).
/// - Per-entry `ThrottlingException` and `InternalFailure` are re-sent (only
///   those entries) under the [`RetryPolicy`]; any other per-entry code is
///   permanent. A call that fails as a whole (network, 5xx after the SDK's
///   own retries, credentials) fails each of its entries as retryable (the
///   bus keeps them in its failover store).
/// - No call but PutEvents on the publish path; DescribeEventBus only once,
///   at build time, if [`EventBridgePublisherBuilder::check_bus`] (or `EVENT_BUS_CHECK=true`).
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
    linger: Duration,
    /// The entries of every publish waiting for a call.
    queue: Queue,
}

/// Builds an [`EventBridgePublisher`]; see [`EventBridgePublisher::builder`].
#[derive(Debug, Default)]
#[must_use]
pub struct EventBridgePublisherBuilder {
    bus: Option<String>,
    source: Option<String>,
    client: Option<Client>,
    sdk_config: Option<aws_config::SdkConfig>,
    max_request_bytes: Option<usize>,
    retry: Option<RetryPolicy>,
    concurrency: Option<usize>,
    linger: Option<Duration>,
    check_bus: bool,
}

/// The old name of [`EventBridgePublisherBuilder`].
#[deprecated(since = "0.2.0", note = "renamed `EventBridgePublisherBuilder`")]
pub type Builder = EventBridgePublisherBuilder;

/// The variables this crate reads beside events-core's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvSettings {
    /// `EVENT_BUS_MAX_REQUEST_BYTES`: the PutEvents request size limit.
    pub max_request_bytes: usize,
    /// `EVENT_BUS_CHECK`: check the bus with DescribeEventBus at start-up.
    pub check_bus: bool,
    /// `EVENT_BUS_CONCURRENCY`: PutEvents calls in flight at once.
    pub concurrency: usize,
    /// `EVENT_BUS_LINGER`: how long an event waits for others to share its
    /// call.
    pub linger: Duration,
}

impl Default for EnvSettings {
    fn default() -> Self {
        EnvSettings {
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            check_bus: false,
            concurrency: DEFAULT_CONCURRENCY,
            linger: DEFAULT_LINGER,
        }
    }
}

const LINGER_EXPECTED: &str =
    "a wait from 0 to 1s with its unit, e.g. `1ms`, `500us`, `0` (send at once)";

/// Parses a linger: `0`, or a whole number with `us`, `ms` or `s`, at most
/// [`MAX_LINGER`].
fn parse_linger(value: &str) -> Result<Duration, ConfigError> {
    let text = value.trim();
    let bad = || ConfigError {
        var: "EVENT_BUS_LINGER",
        value: value.to_owned(),
        expected: LINGER_EXPECTED,
    };
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None if text.chars().all(|c| c == '0') && !text.is_empty() => return Ok(Duration::ZERO),
        None => return Err(bad()),
    };
    let n: u64 = number.parse().map_err(|_| bad())?;
    let linger = match unit {
        "us" | "µs" => Duration::from_micros(n),
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        _ => return Err(bad()),
    };
    if linger > MAX_LINGER {
        return Err(bad());
    }
    Ok(linger)
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
    ///     "EVENT_BUS_MAX_REQUEST_BYTES=`2MB` is not valid: expected a number of bytes from 1024 (1 KiB) to 1048576 (1 MiB), e.g. `262144`"
    /// );
    /// // Too small for any event: refused, rather than every event dead-lettered.
    /// let err = EnvSettings::from_lookup(|v| (v == "EVENT_BUS_MAX_REQUEST_BYTES").then(|| "10".into())).unwrap_err();
    /// assert!(err.to_string().starts_with("EVENT_BUS_MAX_REQUEST_BYTES=`10` is not valid"));
    /// ```
    /// Empty values count as unset, as in [`BusConfig::from_lookup`].
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let lookup = |var: &str| lookup(var).filter(|v| !v.trim().is_empty());
        let mut settings = EnvSettings::default();
        if let Some(v) = lookup("EVENT_BUS_MAX_REQUEST_BYTES") {
            settings.max_request_bytes = parse_in_range(
                "EVENT_BUS_MAX_REQUEST_BYTES",
                &v,
                MIN_REQUEST_BYTES..=MAX_REQUEST_BYTES,
                "a number of bytes from 1024 (1 KiB) to 1048576 (1 MiB), e.g. `262144`",
            )?;
        }
        if let Some(v) = lookup("EVENT_BUS_CHECK") {
            settings.check_bus = events_core::config::parse_bool("EVENT_BUS_CHECK", &v)?;
        }
        if let Some(v) = lookup("EVENT_BUS_CONCURRENCY") {
            settings.concurrency = parse_in_range(
                "EVENT_BUS_CONCURRENCY",
                &v,
                1..=1024,
                "a number of concurrent PutEvents calls from 1 to 1024, e.g. `8`",
            )?;
        }
        if let Some(v) = lookup("EVENT_BUS_LINGER") {
            settings.linger = parse_linger(&v)?;
        }
        Ok(settings)
    }
}

impl EventBridgePublisherBuilder {
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

    /// The PutEvents request size limit, 1 KiB to 1 MiB (default 256 KiB).
    pub fn max_request_bytes(mut self, bytes: usize) -> Self {
        self.max_request_bytes = Some(bytes);
        self
    }

    /// How per-entry throttling and internal failures are re-sent.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// PutEvents calls in flight at once for this publisher, all
    /// publishes together (default 8).
    pub fn concurrency(mut self, calls: usize) -> Self {
        self.concurrency = Some(calls);
        self
    }

    /// How long an event may wait for others to share its PutEvents call
    /// when the call is not full, 0 to 1 s (default [`DEFAULT_LINGER`]).
    ///
    /// Concurrent publishes (one event each, from many tasks) share calls
    /// of up to 10 entries: a full call goes at once, one that is not full
    /// once its oldest event has waited this long. It is the most a lone
    /// publish waits before its call; `Duration::ZERO` sends what is there
    /// at once (fewer events per call under concurrency).
    pub fn linger(mut self, linger: Duration) -> Self {
        self.linger = Some(linger);
        self
    }

    /// Checks once, when building, that the bus exists (DescribeEventBus).
    pub fn check_bus(mut self, check: bool) -> Self {
        self.check_bus = check;
        self
    }

    /// Builds the publisher (and runs the start-up check if asked). Without
    /// a [`client`](Self::client), an AWS configuration with no region
    /// (`AWS_REGION`, the profile) is refused: [`PublisherBuildError::NoRegion`].
    pub async fn build(self) -> Result<EventBridgePublisher, PublisherBuildError> {
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
        if !(MIN_REQUEST_BYTES..=MAX_REQUEST_BYTES).contains(&max_request_bytes) {
            return Err(ConfigError {
                var: "EVENT_BUS_MAX_REQUEST_BYTES",
                value: max_request_bytes.to_string(),
                expected: "a number of bytes from 1024 (1 KiB) to 1048576 (1 MiB), e.g. `262144`",
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
        let linger = self.linger.unwrap_or(DEFAULT_LINGER);
        if linger > MAX_LINGER {
            return Err(ConfigError {
                var: "EVENT_BUS_LINGER",
                value: format!("{linger:?}"),
                expected: LINGER_EXPECTED,
            }
            .into());
        }
        let retry = self.retry.unwrap_or_default();
        // Without a region every call fails: a start-up error, not a
        // failover of every event. (A client given as is is used as is.)
        let client_of = |config: &aws_config::SdkConfig| match config.region() {
            Some(_) => Ok(Client::new(&crate::aws::with_http_client(config))),
            None => Err(PublisherBuildError::NoRegion),
        };
        let client = match (self.client, self.sdk_config) {
            (Some(client), _) => client,
            (None, Some(config)) => client_of(&config)?,
            (None, None) => client_of(&crate::aws::load_sdk_config().await)?,
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
                linger,
                queue: Queue::default(),
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
    /// calls at once, a linger of [`DEFAULT_LINGER`], no start-up check.
    pub fn builder() -> EventBridgePublisherBuilder {
        EventBridgePublisherBuilder::default()
    }

    /// The twelve-factor path: [`BusConfig::from_env`] (`EVENT_BUS_NAME`,
    /// `EVENT_BUS_SOURCE`), [`EnvSettings`] (`EVENT_BUS_MAX_REQUEST_BYTES`,
    /// `EVENT_BUS_CHECK`, `EVENT_BUS_CONCURRENCY`, `EVENT_BUS_LINGER`) and the standard AWS chain
    /// (`AWS_REGION`, credentials, `AWS_ENDPOINT_URL`, `AWS_MAX_ATTEMPTS`).
    pub async fn from_env() -> Result<Self, PublisherBuildError> {
        Self::from_config(&BusConfig::from_env()?).await
    }

    /// As [`from_env`](Self::from_env), with the bus settings given.
    pub async fn from_config(config: &BusConfig) -> Result<Self, PublisherBuildError> {
        let settings = EnvSettings::from_lookup(|var| std::env::var(var).ok())?;
        let mut builder = Self::builder()
            .bus(config.bus_name.clone())
            .max_request_bytes(settings.max_request_bytes)
            .concurrency(settings.concurrency)
            .linger(settings.linger)
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
    pub async fn check_bus(&self) -> Result<(), PublisherBuildError> {
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
                Err(PublisherBuildError::BusNotFound {
                    bus: bus.clone(),
                    message: err.message().unwrap_or("not found").to_owned(),
                })
            }
            Err(err) => Err(PublisherBuildError::check(bus, err)),
        }
    }

    /// Publishes `events`; one result per event, in order: `Ok` with
    /// EventBridge's event id, or the failure.
    ///
    /// The entries join the publisher's queue and this call drives it (see
    /// [`crate::coalesce`]) until each of them is answered: its calls may
    /// carry other publishes' entries, and theirs may carry its own.
    pub(crate) async fn put(&self, events: &[RawEvent]) -> Vec<EntryResult> {
        let inner = &self.inner;
        let caller = Caller::new(events.len());
        let now = Instant::now();
        let mut queued = Vec::with_capacity(events.len());
        for (index, event) in events.iter().enumerate() {
            let entry = wire::entry(event, &wire::source_of(event, inner.source.as_deref()));
            let size = entry.size();
            if size > inner.max_request_bytes {
                tracing::warn!(
                    event = %event.name, id = %event.id, size,
                    limit = inner.max_request_bytes,
                    "event too large for any PutEvents request; not sent"
                );
                caller.complete(index, Err(too_large(size, inner.max_request_bytes)));
                continue;
            }
            queued.push(Queued {
                caller: caller.clone(),
                index,
                entry,
                size,
                ready_at: now + inner.linger,
                attempts: 0,
                since: now,
            });
        }
        if queued.is_empty() {
            return caller.results();
        }
        // Declared before `calls`, dropped after them: if this publish is
        // cancelled, its calls give their entries an error first, then its
        // unsent entries leave the queue.
        let _guard = CallerGuard {
            queue: &inner.queue,
            caller: &caller,
        };
        inner.queue.push(&caller, queued);
        let mut calls = FuturesUnordered::new();
        loop {
            let done = caller.is_done();
            let now = Instant::now();
            if !done {
                while let Some(call) =
                    inner
                        .queue
                        .take(now, inner.max_request_bytes, inner.concurrency)
                {
                    let span = tracing::debug_span!(
                        "put_events", bus = %inner.bus, entries = call.entries.len()
                    );
                    calls.push(self.send_call(call).instrument(span));
                }
            }
            if done && calls.is_empty() {
                break;
            }
            let due = if done { None } else { caller.next_due(now) };
            tokio::select! {
                biased;
                Some(()) = calls.next(), if !calls.is_empty() => {}
                () = caller.woken() => {}
                () = inner.queue.slot_freed(), if !done => {}
                () = sleep_until_some(due), if due.is_some() => {}
            }
        }
        caller.results()
    }

    /// Sends one call: each entry's result goes to its caller; throttled
    /// and internally failed entries go back to the queue after their
    /// backoff (or, out of attempts or time, to their caller as retryable
    /// failures).
    async fn send_call(&self, mut call: InFlight<'_>) {
        let inner = &self.inner;
        let request: Vec<PutEventsRequestEntry> = call
            .entries
            .iter()
            .map(|q| {
                PutEventsRequestEntry::builder()
                    .event_bus_name(&inner.bus)
                    .source(&q.entry.source)
                    .detail_type(&q.entry.detail_type)
                    .detail(&q.entry.detail)
                    .build()
            })
            .collect();
        let result = inner
            .client
            .put_events()
            .set_entries(Some(request))
            .send()
            .await;
        // Answered: from here on nothing is cancelled, every entry leaves
        // `call` with its result.
        let entries = std::mem::take(&mut call.entries);
        let output = match result {
            Ok(output) => output,
            Err(err) => {
                let error = call_error(&err);
                tracing::warn!(entries = entries.len(), error = %error, "PutEvents call failed");
                for q in entries {
                    q.caller.complete(q.index, Err(error.clone()));
                }
                return;
            }
        };
        let results = output.entries();
        let now = Instant::now();
        // One backoff per attempt number, so entries throttled together are
        // sent again together.
        let mut delays: Vec<(u32, Duration)> = Vec::new();
        let mut again = Vec::new();
        for (pos, mut q) in entries.into_iter().enumerate() {
            q.attempts += 1;
            let error = match results.get(pos) {
                Some(r) if r.error_code().is_none() => {
                    q.caller
                        .complete(q.index, Ok(r.event_id().map(str::to_owned)));
                    continue;
                }
                Some(r) => {
                    let code = r.error_code().unwrap_or_default();
                    let message = r.error_message().unwrap_or_default();
                    if !is_retryable(code) {
                        tracing::warn!(code, message, "PutEvents refused an entry for good");
                        q.caller
                            .complete(q.index, Err(PublishError::permanent(code, message)));
                        continue;
                    }
                    PublishError::retryable(code, message)
                }
                None => PublishError::retryable(
                    "MissingResult",
                    "PutEvents answered with fewer result entries than it was sent",
                ),
            };
            let attempt = q.attempts + 1;
            let delay = match delays.iter().find(|(a, _)| *a == attempt) {
                Some(&(_, delay)) => delay,
                None => {
                    let delay = inner.retry.delay(attempt);
                    delays.push((attempt, delay));
                    delay
                }
            };
            if attempt > inner.retry.max_attempts
                || now.duration_since(q.since) + delay > inner.retry.max_elapsed
            {
                tracing::warn!(
                    attempts = q.attempts,
                    code = %error.code,
                    "PutEvents entry still throttled or failing; giving it back for failover"
                );
                q.caller.complete(q.index, Err(error));
                continue;
            }
            q.ready_at = now + delay;
            again.push(q);
        }
        if !again.is_empty() {
            tracing::debug!(
                entries = again.len(),
                delay_ms = delays.iter().map(|(_, d)| d.as_millis() as u64).max(),
                "re-sending entries"
            );
            inner.queue.requeue(again);
        }
    }
}

/// Sleeps until `at`, or for ever without one (a disabled `select!` branch).
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The permanent failure of an event too large for any request.
fn too_large(size: usize, limit: usize) -> PublishError {
    PublishError::permanent(
        EntryError::TOO_LARGE_CODE,
        format!(
            "the event is {size} bytes as PutEvents counts them (Source + DetailType + Detail), \
             more than the {limit}-byte request limit (EVENT_BUS_MAX_REQUEST_BYTES, at most 1048576)"
        ),
    )
}

/// A failed call as each of its entries' error: retryable, with the
/// service's code when there is one.
fn call_error<E, R>(err: &SdkError<E, R>) -> PublishError
where
    E: std::error::Error + ProvideErrorMetadata + 'static,
    R: std::fmt::Debug + 'static,
{
    let code = call_code(err);
    let message = match err {
        SdkError::ServiceError(_) => err.message().map(str::to_owned),
        _ => None,
    };
    PublishError::retryable(code, message.unwrap_or_else(|| one_line(err)))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn linger_of(value: &str) -> Result<Duration, String> {
        EnvSettings::from_lookup(|v| (v == "EVENT_BUS_LINGER").then(|| value.to_owned()))
            .map(|s| s.linger)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn linger_reads_units_up_to_one_second() {
        assert_eq!(
            EnvSettings::from_lookup(|_| None).unwrap().linger,
            DEFAULT_LINGER
        );
        assert_eq!(linger_of(""), Ok(DEFAULT_LINGER), "empty is unset");
        assert_eq!(linger_of("0"), Ok(Duration::ZERO));
        assert_eq!(linger_of("500us"), Ok(Duration::from_micros(500)));
        assert_eq!(linger_of(" 2ms "), Ok(Duration::from_millis(2)));
        assert_eq!(linger_of("1s"), Ok(Duration::from_secs(1)));
        for bad in ["2", "2 ms", "1.5ms", "-1ms", "2m", "1001ms", "soon", "ms"] {
            let err = linger_of(bad).unwrap_err();
            assert_eq!(
                err,
                format!(
                    "EVENT_BUS_LINGER=`{bad}` is not valid: expected a wait from 0 to 1s with its unit, \
                     e.g. `1ms`, `500us`, `0` (send at once)"
                )
            );
        }
    }

    #[tokio::test]
    async fn a_builder_linger_over_one_second_is_refused() {
        let client = Client::from_conf(
            aws_sdk_eventbridge::Config::builder()
                .behavior_version(aws_sdk_eventbridge::config::BehaviorVersion::latest())
                .build(),
        );
        let err = EventBridgePublisher::builder()
            .client(client)
            .linger(Duration::from_millis(1500))
            .build()
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("EVENT_BUS_LINGER=`1.5s` is not valid: expected a wait from 0 to 1s"),
            "{err}"
        );
    }
}
