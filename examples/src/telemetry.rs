//! The company example's trace export (feature `otel`): the libraries' spans through `tracing-opentelemetry` to stdout, or to an OTLP collector when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
//!
//! The libraries only make spans (`publish`, `dispatch`, `handle`,
//! `consume`) and carry their context; this is the part a service's `main`
//! adds: a tracer provider with an exporter, the bridge from `tracing`, and
//! a flush at exit.
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> { Ok(()) }
//! # fn main() -> anyhow::Result<()> {
//! use events_examples::telemetry::Telemetry;
//!
//! let telemetry = Telemetry::from_env()?;
//! telemetry.init()?;
//! let result = tokio::runtime::Runtime::new()?.block_on(run());
//! telemetry.shutdown()?; // exports what is left
//! result
//! # }
//! ```

use std::io::IsTerminal;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing::Subscriber;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// The variable that sends the traces to an OTLP collector (its base URL:
/// the traces go to `{endpoint}/v1/traces`), as OpenTelemetry's SDKs read it.
pub const OTLP_ENDPOINT_VAR: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

/// The service name the spans are exported under when `OTEL_SERVICE_NAME`
/// is not set.
pub const SERVICE_NAME: &str = "company";

/// Where the spans go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportTo {
    /// Printed to stdout (`opentelemetry-stdout`), in batches: every few
    /// seconds while running, the rest at [`Telemetry::shutdown`].
    Stdout,
    /// Sent to an OTLP collector over HTTP, protobuf-encoded, at this URL
    /// (`{OTEL_EXPORTER_OTLP_ENDPOINT}/v1/traces`).
    Otlp(String),
}

/// The trace export could not be set up or finished.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` is an `https://` URL (or not an
    /// `http://` one): the example's OTLP client compiles no TLS.
    #[error("{OTLP_ENDPOINT_VAR}={0:?}: the example's OTLP client speaks plain HTTP only (no TLS compiled); use an http:// collector, e.g. a local OpenTelemetry Collector at http://localhost:4318")]
    UnsupportedEndpoint(String),
    /// The OTLP exporter could not be built.
    #[error("the OTLP exporter could not be built: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    /// A global `tracing` subscriber was already installed.
    #[error("a tracing subscriber is already installed: {0}")]
    Init(#[from] tracing_subscriber::util::TryInitError),
    /// Flushing or shutting down the tracer provider failed (spans may be
    /// lost, e.g. the collector could not be reached).
    #[error("the trace export did not finish: {0}")]
    Shutdown(#[from] opentelemetry_sdk::error::OTelSdkError),
}

/// The example's tracer provider and where it exports; [`shutdown`] it at
/// exit, or the last spans are not exported.
///
/// [`shutdown`]: Telemetry::shutdown
#[derive(Debug)]
pub struct Telemetry {
    provider: SdkTracerProvider,
    export_to: ExportTo,
}

impl Telemetry {
    /// [`from_lookup`](Self::from_lookup) on the process environment.
    ///
    /// # Errors
    ///
    /// As [`from_lookup`](Self::from_lookup)'s.
    pub fn from_env() -> Result<Self, TelemetryError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// A tracer provider exporting in batches: to the OTLP collector at
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` (read through `lookup`; HTTP,
    /// protobuf) when it is set and not empty, to stdout otherwise. The
    /// spans' resource names the service `company` unless
    /// `OTEL_SERVICE_NAME` is set.
    ///
    /// # Errors
    ///
    /// [`TelemetryError::UnsupportedEndpoint`] for an endpoint that is not
    /// `http://`; [`TelemetryError::Exporter`] when the OTLP exporter cannot
    /// be built (e.g. the URL does not parse).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, TelemetryError> {
        let endpoint = lookup(OTLP_ENDPOINT_VAR).filter(|endpoint| !endpoint.trim().is_empty());
        let mut resource = Resource::builder();
        if lookup("OTEL_SERVICE_NAME").is_none_or(|name| name.is_empty()) {
            resource = resource.with_service_name(SERVICE_NAME);
        }
        let builder = SdkTracerProvider::builder().with_resource(resource.build());
        let (provider, export_to) = match endpoint {
            None => (
                builder
                    .with_batch_exporter(opentelemetry_stdout::SpanExporter::default())
                    .build(),
                ExportTo::Stdout,
            ),
            Some(endpoint) => {
                let endpoint = endpoint.trim();
                if !endpoint.starts_with("http://") {
                    return Err(TelemetryError::UnsupportedEndpoint(endpoint.to_owned()));
                }
                let url = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
                let exporter = opentelemetry_otlp::SpanExporter::builder()
                    .with_http()
                    .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                    .with_endpoint(url.clone())
                    .build()?;
                (
                    builder.with_batch_exporter(exporter).build(),
                    ExportTo::Otlp(url),
                )
            }
        };
        Ok(Telemetry {
            provider,
            export_to,
        })
    }

    /// Where the spans go.
    pub fn export_to(&self) -> &ExportTo {
        &self.export_to
    }

    /// The bridge from `tracing` to this provider: every span at `INFO` or
    /// above becomes an OpenTelemetry span (named by its `otel.name` when it
    /// has one, so `publish` is exported as `publish {event name}`).
    pub fn layer<S>(&self) -> impl Layer<S> + Send + Sync + 'static
    where
        S: Subscriber + for<'span> LookupSpan<'span> + Send + Sync,
    {
        tracing_opentelemetry::layer()
            .with_tracer(self.provider.tracer(SERVICE_NAME))
            .with_filter(LevelFilter::INFO)
    }

    /// Installs the process's `tracing` subscriber: the example's log lines
    /// on stderr (filtered by `RUST_LOG`, `info` by default), as without the
    /// feature, and [`layer`](Self::layer).
    ///
    /// # Errors
    ///
    /// [`TelemetryError::Init`] when a global subscriber is already set.
    pub fn init(&self) -> Result<(), TelemetryError> {
        let logs = tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .with_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "info".into()),
            );
        tracing_subscriber::registry()
            .with(logs)
            .with(self.layer())
            .try_init()?;
        Ok(())
    }

    /// Exports the spans not exported yet and stops the provider (call it
    /// once every span of interest has ended: after the bus's shutdown).
    ///
    /// # Errors
    ///
    /// [`TelemetryError::Shutdown`] when the export failed or timed out.
    pub fn shutdown(self) -> Result<(), TelemetryError> {
        self.provider.shutdown()?;
        Ok(())
    }
}

/// The span a request to the service runs in (the company example has no
/// HTTP server: `main` stands for a `POST /companies`), so the spans of the
/// use case (`publish`, `dispatch`, `handle`) make one trace under a root.
pub fn request_span() -> tracing::Span {
    tracing::info_span!(
        "request",
        otel.name = "POST /companies",
        otel.kind = "server",
        http.request.method = "POST",
        http.route = "/companies",
    )
}
