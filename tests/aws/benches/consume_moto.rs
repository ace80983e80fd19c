//! Consuming throughput against moto: 1,000 messages (the EventBridge
//! envelope of `CompanyCreated`) consumed and handled by `SqsConsumer` (one
//! no-op handler, default settings but a 1 s long poll), beside a
//! hand-written loop with the SDK (ReceiveMessage of 10, DeleteMessageBatch
//! of what it got, no decoding): the server's limit. Each round fills a
//! fresh queue for each side (not timed) and times draining it; rounds
//! alternate the order. Prints one line per round and the medians.
//!
//! `cargo bench -p events-aws-tests --bench consume_moto` (N=… rounds=…
//! via `CONSUME_BENCH_N`, `CONSUME_BENCH_ROUNDS`).

#![allow(missing_docs)]

use std::time::{Duration, Instant};

use aws_sdk_sqs::types::DeleteMessageBatchRequestEntry;
use events_aws_tests::consume::{envelope_body, queue, send};
use events_aws_tests::moto::Moto;
use events_core::{Event, EventBus, Handler, HandlerResult};
use events_eventbridge::{CancellationToken, SqsConsumer};
use events_examples::domain::events::CompanyCreated;

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

async fn baseline(moto: &Moto, queue_url: &str, n: usize) -> Duration {
    let sqs = moto.sqs().await;
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
    start.elapsed()
}

async fn ours(moto: &Moto, queue_url: &str, n: usize) -> Duration {
    let bus = EventBus::builder()
        .without_store()
        .discover(false)
        .register_handler_named::<CompanyCreated, _>("noop", NoOp)
        .build()
        .unwrap();
    let consumer = SqsConsumer::builder()
        .client(moto.sqs().await)
        .queue_url(queue_url)
        .wait_seconds(1)
        .build(bus)
        .await
        .unwrap();
    let token = CancellationToken::new();
    let start = Instant::now();
    let task = tokio::spawn({
        let consumer = consumer.clone();
        let token = token.clone();
        async move { consumer.run(token).await }
    });
    while consumer.report().deleted < n as u64 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let took = start.elapsed();
    token.cancel();
    let report = task.await.unwrap();
    assert_eq!(report.handled, n as u64, "{report:?}");
    took
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
        let (mut base_rates, mut our_rates) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            let qb = queue(&moto, &format!("bench-base-{round}"), 30, None).await;
            let qo = queue(&moto, &format!("bench-ours-{round}"), 30, None).await;
            send(&moto, &qb.queue_url, &bodies).await;
            send(&moto, &qo.queue_url, &bodies).await;
            let (b, o) = if round % 2 == 0 {
                let b = baseline(&moto, &qb.queue_url, n).await;
                (b, ours(&moto, &qo.queue_url, n).await)
            } else {
                let o = ours(&moto, &qo.queue_url, n).await;
                (baseline(&moto, &qb.queue_url, n).await, o)
            };
            let (br, or) = (n as f64 / b.as_secs_f64(), n as f64 / o.as_secs_f64());
            println!(
                "round {round}: baseline {br:7.0} msg/s ({b:.2?}), SqsConsumer {or:7.0} msg/s ({o:.2?}): {:.0} %",
                100.0 * or / br
            );
            base_rates.push(br);
            our_rates.push(or);
        }
        let (b, o) = (median(base_rates), median(our_rates));
        println!(
            "median: baseline {b:.0} msg/s, SqsConsumer {o:.0} msg/s: {:.0} % of the baseline (goal >= 70 %)",
            100.0 * o / b
        );
    });
}
