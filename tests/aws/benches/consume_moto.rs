//! Consuming throughput against moto: 1,000 messages (the EventBridge
//! envelope of `CompanyCreated`) drained by a hand-written loop with the SDK
//! (ReceiveMessage of 10, DeleteMessageBatch of what it got, no decoding:
//! the server's limit) and by `SqsConsumer` consuming and handling them
//! (one no-op handler) twice: with its defaults, as `from_env` runs it
//! (10 messages a receive, 10 in flight, 20 s long poll), and tuned (20 in
//! flight, so a receive goes out while the previous batch is handled).
//! Each round fills a fresh queue for each side (not timed) and times
//! draining it; the sides take turns going first. Each side's client counts
//! its calls (an interceptor), so a side that batches worse shows it.
//! Prints one line per side and round and the medians.
//!
//! `cargo bench -p events-aws-tests --bench consume_moto` (N=… rounds=…
//! via `CONSUME_BENCH_N`, `CONSUME_BENCH_ROUNDS`).

#![allow(missing_docs)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_sqs::config::interceptors::BeforeSerializationInterceptorContextRef;
use aws_sdk_sqs::config::{ConfigBag, Intercept};
use aws_sdk_sqs::error::BoxError;
use aws_sdk_sqs::operation::change_message_visibility::ChangeMessageVisibilityInput;
use aws_sdk_sqs::operation::delete_message_batch::DeleteMessageBatchInput;
use aws_sdk_sqs::operation::receive_message::ReceiveMessageInput;
use aws_sdk_sqs::types::DeleteMessageBatchRequestEntry;
use events_aws_tests::consume::{envelope_body, queue, send};
use events_aws_tests::moto::Moto;
use events_core::{Event, EventBus, Handler, HandlerResult};
use events_eventbridge::{CancellationToken, SqsConsumer};
use events_examples::domain::events::CompanyCreated;

/// The SQS calls one side made.
#[derive(Debug, Default)]
struct Calls {
    receive: AtomicU64,
    delete: AtomicU64,
    visibility: AtomicU64,
}

#[derive(Debug, Clone, Default)]
struct CountCalls(Arc<Calls>);

impl Intercept for CountCalls {
    fn name(&self) -> &'static str {
        "CountCalls"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let input = context.input();
        let counter = if input.downcast_ref::<ReceiveMessageInput>().is_some() {
            &self.0.receive
        } else if input.downcast_ref::<DeleteMessageBatchInput>().is_some() {
            &self.0.delete
        } else if input
            .downcast_ref::<ChangeMessageVisibilityInput>()
            .is_some()
        {
            &self.0.visibility
        } else {
            return Ok(());
        };
        counter.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// A client of `moto` counting its calls in the returned [`Calls`].
async fn counted_client(moto: &Moto) -> (aws_sdk_sqs::Client, Arc<Calls>) {
    let count = CountCalls::default();
    let calls = Arc::clone(&count.0);
    let config = aws_sdk_sqs::config::Builder::from(&moto.sdk_config().await)
        .interceptor(count)
        .build();
    (aws_sdk_sqs::Client::from_conf(config), calls)
}

struct NoOp;

impl Handler<CompanyCreated> for NoOp {
    async fn handle(&self, event: &Event<CompanyCreated>) -> HandlerResult {
        std::hint::black_box(event);
        Ok(())
    }
}

fn bodies(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            envelope_body(&Event::new(CompanyCreated {
                company_id: uuid::Uuid::new_v4(),
                company_name: format!("company {i}"),
                country_id: uuid::Uuid::new_v4(),
            }))
        })
        .collect()
}

async fn baseline(moto: &Moto, queue_url: &str, n: usize) -> (Duration, Arc<Calls>) {
    let (sqs, calls) = counted_client(moto).await;
    let start = Instant::now();
    let mut done = 0;
    while done < n {
        let out = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            continue;
        }
        let mut delete = sqs.delete_message_batch().queue_url(queue_url);
        for (i, m) in messages.iter().enumerate() {
            delete = delete.entries(
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle.clone().unwrap())
                    .build()
                    .unwrap(),
            );
        }
        let out = delete.send().await.unwrap();
        done += out.successful().len();
    }
    (start.elapsed(), calls)
}

/// `SqsConsumer` with its defaults, or with `concurrency` messages in flight.
async fn ours(
    moto: &Moto,
    queue_url: &str,
    n: usize,
    concurrency: Option<usize>,
) -> (Duration, Arc<Calls>) {
    let bus = EventBus::builder()
        .without_store()
        .discover(false)
        .register_handler_named::<CompanyCreated, _>("noop", NoOp)
        .build()
        .unwrap();
    let (client, calls) = counted_client(moto).await;
    let mut builder = SqsConsumer::builder().client(client).queue_url(queue_url);
    if let Some(c) = concurrency {
        builder = builder.concurrency(c);
    }
    let consumer = builder.build(bus).await.unwrap();
    let token = CancellationToken::new();
    let start = Instant::now();
    let task = tokio::spawn({
        let consumer = consumer.clone();
        let token = token.clone();
        async move { consumer.run(token).await.unwrap() }
    });
    while consumer.report().deleted < n as u64 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let took = start.elapsed();
    // Counted now: the receive left waiting on the empty queue is not the
    // drain's.
    let counted = Arc::new(Calls {
        receive: AtomicU64::new(calls.receive.load(Ordering::Relaxed)),
        delete: AtomicU64::new(calls.delete.load(Ordering::Relaxed)),
        visibility: AtomicU64::new(calls.visibility.load(Ordering::Relaxed)),
    });
    token.cancel();
    let report = task.await.unwrap();
    assert_eq!(report.handled, n as u64, "{report:?}");
    assert_eq!(report.delete_failed, 0, "{report:?}");
    (took, counted)
}

#[derive(Clone, Copy)]
enum Side {
    Baseline,
    Defaults,
    Tuned,
}

impl Side {
    const ALL: [Side; 3] = [Side::Baseline, Side::Defaults, Side::Tuned];

    fn label(self) -> &'static str {
        match self {
            Side::Baseline => "SDK loop (baseline)",
            Side::Defaults => "SqsConsumer, defaults",
            Side::Tuned => "SqsConsumer, 20 in flight",
        }
    }

    async fn drain(self, moto: &Moto, queue_url: &str, n: usize) -> (Duration, Arc<Calls>) {
        match self {
            Side::Baseline => baseline(moto, queue_url, n).await,
            Side::Defaults => ours(moto, queue_url, n, None).await,
            Side::Tuned => ours(moto, queue_url, n, Some(20)).await,
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let n: usize = std::env::var("CONSUME_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let rounds: usize = std::env::var("CONSUME_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let moto = Moto::start();
        let bodies = bodies(n);
        let mut rates: Vec<Vec<f64>> = vec![Vec::new(); Side::ALL.len()];
        for round in 0..rounds {
            let mut queues = Vec::new();
            for (i, _) in Side::ALL.iter().enumerate() {
                let q = queue(&moto, &format!("bench-{round}-{i}"), 30, None).await;
                send(&moto, &q.queue_url, &bodies).await;
                queues.push(q.queue_url);
            }
            // The sides take turns going first.
            let mut measured = vec![0.0; Side::ALL.len()];
            for k in 0..Side::ALL.len() {
                let i = (round + k) % Side::ALL.len();
                let side = Side::ALL[i];
                let (took, calls) = side.drain(&moto, &queues[i], n).await;
                let rate = n as f64 / took.as_secs_f64();
                measured[i] = rate;
                println!(
                    "round {round}: {:<26} {rate:7.1} msg/s ({took:.2?}): {} ReceiveMessage, {} DeleteMessageBatch, {} ChangeMessageVisibility",
                    side.label(),
                    calls.receive.load(Ordering::Relaxed),
                    calls.delete.load(Ordering::Relaxed),
                    calls.visibility.load(Ordering::Relaxed),
                );
            }
            for (i, rate) in measured.into_iter().enumerate() {
                rates[i].push(rate);
            }
            println!(
                "round {round}: defaults {:.0} %, tuned {:.0} % of the baseline",
                100.0 * rates[1][round] / rates[0][round],
                100.0 * rates[2][round] / rates[0][round],
            );
        }
        let medians: Vec<f64> = rates.into_iter().map(median).collect();
        for (side, m) in Side::ALL.iter().zip(&medians) {
            println!(
                "median: {:<26} {m:7.1} msg/s: {:.0} % of the baseline",
                side.label(),
                100.0 * m / medians[0]
            );
        }
        println!("goal: SqsConsumer >= 70 % of the baseline");
    });
}
