//! The company example's handlers behind an EventBridge API destination
//! (`cargo run -p events-examples --features http --example company-http`):
//! `POST /events-bus/dispatch` on `EVENT_BUS_HTTP_ADDR` (default
//! `127.0.0.1:8080`), requiring the credential the connection sends, read by
//! `DispatchRouter::from_env`: `EVENT_BUS_HTTP_API_KEY` (in the header
//! `EVENT_BUS_HTTP_API_KEY_HEADER`, default `x-events-key`),
//! `EVENT_BUS_HTTP_BASIC_USERNAME` and `_PASSWORD`, or
//! `EVENT_BUS_HTTP_BEARER_TOKEN`. Without one it refuses to start, unless
//! `EVENT_BUS_HTTP_ALLOW_UNAUTHENTICATED=true`. Served by
//! `events_eventbridge::http::serve_with_shutdown`, with the header and body
//! timeouts and the connection bound of `HttpServerSettings::from_env`
//! (`EVENT_BUS_HTTP_HEADER_TIMEOUT`, `_BODY_TIMEOUT`, `_MAX_CONNECTIONS`),
//! until ctrl-c.

use company_notifications as _;
use events_core::EventBus;
use events_eventbridge::http::{serve_with_shutdown, DispatchRouter, HttpServerSettings};
use events_eventbridge::Processor;
use events_examples as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let bus = EventBus::builder().without_store().build()?;
    let router = DispatchRouter::from_env(Processor::new(bus))?.build()?;
    let settings = HttpServerSettings::from_env()?;
    let addr = std::env::var("EVENT_BUS_HTTP_ADDR").unwrap_or_else(|_| "127.0.0.1:8080".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!(
        "listening on http://{}/events-bus/dispatch",
        listener.local_addr()?
    );
    serve_with_shutdown(listener, router, settings, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await;
    Ok(())
}
