//! An HTTP adapter process for the attack test (`tests/http_attack.rs`): the
//! company example's `CompanyCreated` counted by one handler, behind
//! `DispatchRouter::from_env` and `http::serve` with
//! `HttpServerSettings::from_env`, on `127.0.0.1:0`. Prints its address and
//! its open-files limit (from `/proc/self/limits`) as the first line,
//! `listening <addr> nofile <limit>`, then serves until killed.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use events_core::{Event, EventBus, Handler, HandlerResult};
use events_eventbridge::http::{serve, DispatchRouter, HttpServerSettings};
use events_eventbridge::Processor;
use events_examples::domain::events::CompanyCreated;

struct Count(Arc<AtomicUsize>);

impl Handler<CompanyCreated> for Count {
    async fn handle(&self, _: &Event<CompanyCreated>) -> HandlerResult {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// The soft `Max open files` of this process.
fn nofile() -> String {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| {
            limits
                .lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).map(str::to_owned))
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bus = EventBus::builder()
        .without_store()
        .discover(false)
        .register_handler_named::<CompanyCreated, _>("count", Count(Arc::default()))
        .build()?;
    let router = DispatchRouter::from_env(Processor::new(bus))?.build()?;
    let settings = HttpServerSettings::from_env()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("listening {} nofile {}", listener.local_addr()?, nofile());
    serve(listener, router, settings).await;
    Ok(())
}
