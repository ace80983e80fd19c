//! The company example's handlers as an AWS Lambda function
//! (`cargo build -p events-examples --features lambda --example company-lambda`,
//! packaged with cargo-lambda or as a `bootstrap` for `provided.al2023`).
//!
//! One binary serves both triggers: an SQS event source mapping (with
//! `ReportBatchItemFailures`: the response lists the records to deliver
//! again) and an EventBridge rule targeting the function directly (an error
//! makes Lambda retry). Dedup: `EVENT_BUS_DEDUP=memory` keeps marks for the
//! life of the execution environment.

use std::sync::Arc;

use company_notifications as _;
use events_core::EventBus;
use events_eventbridge::lambda::{
    handle_eventbridge_event, handle_sqs_event, EventBridgeEvent, SqsEvent,
};
use events_eventbridge::{MemoryDedup, Processor};
use events_examples as _;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

async fn handle(processor: &Processor, event: LambdaEvent<Value>) -> Result<Value, Error> {
    let payload = event.payload;
    if payload.get("Records").is_some() {
        let event: SqsEvent = serde_json::from_value(payload)?;
        Ok(serde_json::to_value(
            handle_sqs_event(processor, event).await,
        )?)
    } else {
        let event: EventBridgeEvent = serde_json::from_value(payload)?;
        handle_eventbridge_event(processor, &event).await?;
        Ok(Value::Null)
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .with_ansi(false)
        .without_time() // CloudWatch stamps each line
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let bus = EventBus::builder().without_store().build()?;
    let mut processor = Processor::new(bus);
    if std::env::var("EVENT_BUS_DEDUP").as_deref() == Ok("memory") {
        processor = processor.with_dedup(Arc::new(MemoryDedup::default()));
    }
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let processor = processor.clone();
        async move { handle(&processor, event).await }
    }))
    .await
}
