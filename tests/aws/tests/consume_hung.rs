//! A handler that never returns, behind the SQS consumer (moto): the
//! consumer renews a message's visibility while its handler runs, so
//! without a handler timeout the hung message was never redelivered, never
//! reached the DLQ, and held its concurrency slot for ever. With one (the
//! bus's `handler_timeout`, `EVENT_BUS_HANDLER_TIMEOUT`), the hung call
//! fails, its message is left for redelivery and reaches the DLQ after
//! `maxReceiveCount` receives, and the messages behind it, with a
//! concurrency of one, are all handled.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use events_aws_tests::consume::{counts, envelope_body, queue, send};
use events_aws_tests::moto::Moto;
use events_core::{DomainEvent, Event, EventBus, Handler, HandlerResult};
use events_eventbridge::{CancellationToken, SqsConsumer};
use events_examples::domain::events::CompanyCreated;

#[derive(DomainEvent, Debug, Clone)]
#[event(
    company = "testclean",
    service = "billing",
    version = 1,
    resource = "invoice",
    action = "stuck"
)]
struct InvoiceStuck {
    invoice: u32,
}

#[derive(Clone, Default)]
struct Hangs(Arc<AtomicUsize>);

impl Handler<InvoiceStuck> for Hangs {
    async fn handle(&self, _: &Event<InvoiceStuck>) -> HandlerResult {
        self.0.fetch_add(1, Ordering::SeqCst);
        std::future::pending::<()>().await;
        Ok(())
    }
}

#[derive(Clone, Default)]
struct Counts(Arc<AtomicUsize>);

impl Handler<CompanyCreated> for Counts {
    async fn handle(&self, _: &Event<CompanyCreated>) -> HandlerResult {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_handler_s_message_fails_at_the_timeout_reaches_the_dlq_and_frees_its_slot() {
    let moto = Moto::start();
    let q = queue(&moto, "hung", 1, Some(2)).await;
    let hangs = Hangs::default();
    let healthy = Counts::default();
    let bus = EventBus::builder()
        .without_store()
        .discover(false)
        .handler_timeout(Duration::from_millis(500))
        .register_handler_named::<InvoiceStuck, _>("hangs", hangs.clone())
        .register_handler_named::<CompanyCreated, _>("healthy", healthy.clone())
        .build()
        .unwrap();
    let stuck = envelope_body(&Event::new(InvoiceStuck { invoice: 7 }));
    send(&moto, &q.queue_url, std::slice::from_ref(&stuck)).await;
    let companies: Vec<String> = (0..5)
        .map(|i| {
            envelope_body(&Event::new(CompanyCreated {
                company_id: uuid::Uuid::new_v4(),
                company_name: format!("company {i}"),
                country_id: uuid::Uuid::new_v4(),
            }))
        })
        .collect();
    send(&moto, &q.queue_url, &companies).await;

    let consumer = SqsConsumer::builder()
        .client(moto.sqs().await)
        .queue_url(&q.queue_url)
        .wait_time(Duration::from_secs(1))
        .visibility_timeout(Duration::from_secs(1))
        .concurrency(1)
        .build(bus)
        .await
        .unwrap();
    let token = CancellationToken::new();
    let task = {
        let consumer = consumer.clone();
        let token = token.clone();
        tokio::spawn(async move { consumer.run(token).await.unwrap() })
    };
    // Bounded polling: the hung message in the DLQ, the others handled.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let in_dlq = counts(&moto, &q.dlq_url).await.0;
        if in_dlq >= 1 && healthy.0.load(Ordering::SeqCst) >= 5 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not done in 60 s: {} in the DLQ, {} handled, the hung handler called {} times; {:?}",
            in_dlq,
            healthy.0.load(Ordering::SeqCst),
            hangs.0.load(Ordering::SeqCst),
            consumer.report()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    token.cancel();
    let report = task.await.unwrap();
    assert_eq!(healthy.0.load(Ordering::SeqCst), 5, "each handled once");
    assert_eq!(
        hangs.0.load(Ordering::SeqCst),
        2,
        "called once per receive, maxReceiveCount times"
    );
    assert_eq!(report.failed, 2, "{report:?}");
    assert_eq!(moto.drain(&q.dlq_url).await, vec![stuck]);
    assert_eq!(
        counts(&moto, &q.queue_url).await,
        (0, 0),
        "the queue is empty"
    );
}
