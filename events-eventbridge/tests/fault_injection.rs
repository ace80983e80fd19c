//! Faults EventBridge does not make on demand (per-entry
//! `ThrottlingException` / `InternalFailure`, refusals, failing calls),
//! injected with `aws-smithy-mocks` under the real SDK client, through the
//! bus's public API. Each scripted PutEvents records which events it was
//! sent, so the tests assert exactly what was re-sent. Timers run on
//! tokio's paused clock.

// Tests unwrap: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_eventbridge::config::retry::RetryConfig;
use aws_sdk_eventbridge::operation::put_events::{PutEventsInput, PutEventsOutput};
use aws_sdk_eventbridge::types::PutEventsResultEntry;
use aws_sdk_eventbridge::Client;
use aws_smithy_mocks::{mock, MockResponse, MockResponseInterceptor, RuleMode};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use events_core::{Delivery, DomainEvent, Event, EventBus, Mode};
use events_eventbridge::{EntryError, EventBridgePublisher, RetryPolicy};
use tokio::time::Instant;

#[derive(DomainEvent, Debug, Clone, PartialEq)]
#[event(
    company = "testclean",
    service = "api",
    version = 1,
    resource = "company",
    action = "created"
)]
struct CompanyCreated {
    company_name: String,
}

fn event(name_len: usize) -> Event<CompanyCreated> {
    Event::new(CompanyCreated {
        company_name: "x".repeat(name_len),
    })
}

/// What one entry of a scripted call answers.
#[derive(Clone, Copy)]
enum Answer {
    Accept,
    Fail(&'static str),
}

/// One PutEvents call as the script saw it.
#[derive(Debug, Clone)]
struct Call {
    at: Instant,
    ids: Vec<String>,
}

/// A scripted PutEvents: `answer(call number, event id)` decides each
/// entry; every call is recorded.
#[derive(Clone)]
struct Script {
    calls: Arc<Mutex<Vec<Call>>>,
}

fn detail_id(detail: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(detail).unwrap();
    value["id"].as_str().unwrap().to_owned()
}

impl Script {
    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    /// How many calls each event id was in.
    fn sends(&self) -> HashMap<String, usize> {
        let mut sends = HashMap::new();
        for call in self.calls() {
            for id in call.ids {
                *sends.entry(id).or_default() += 1;
            }
        }
        sends
    }
}

/// A client whose PutEvents answers per entry through `answer`, or fails the
/// whole call (HTTP 500) when `call_error` says so. The SDK's own retries are
/// off (what they leave failed is what the publisher sees; the mocks cannot
/// replay a request into a retry).
fn scripted(
    answer: impl Fn(usize, &str) -> Answer + Send + Sync + 'static,
    call_error: impl Fn(usize) -> bool + Send + Sync + 'static,
) -> (Client, Script) {
    let script = Script {
        calls: Arc::default(),
    };
    let calls = script.calls.clone();
    let rule = mock!(Client::put_events).then_compute_response(move |input: &PutEventsInput| {
        let ids: Vec<String> = input
            .entries()
            .iter()
            .map(|e| detail_id(e.detail().unwrap()))
            .collect();
        let number = {
            let mut calls = calls.lock().unwrap();
            calls.push(Call {
                at: Instant::now(),
                ids: ids.clone(),
            });
            calls.len()
        };
        if call_error(number) {
            // What EventBridge answers when it fails a whole call.
            return MockResponse::Http(HttpResponse::new(
                StatusCode::try_from(500).unwrap(),
                SdkBody::from(r#"{"__type":"InternalException","message":"scripted 500"}"#),
            ));
        }
        let mut failed = 0;
        let entries = ids
            .iter()
            .map(|id| match answer(number, id) {
                Answer::Accept => PutEventsResultEntry::builder()
                    .event_id(format!("eb-{id}"))
                    .build(),
                Answer::Fail(code) => {
                    failed += 1;
                    PutEventsResultEntry::builder()
                        .error_code(code)
                        .error_message(format!("scripted {code}"))
                        .build()
                }
            })
            .collect();
        MockResponse::Output(
            PutEventsOutput::builder()
                .set_entries(Some(entries))
                .failed_entry_count(failed)
                .build(),
        )
    });
    let client = Client::from_conf(
        aws_sdk_eventbridge::Config::builder()
            .with_test_defaults()
            .region(aws_sdk_eventbridge::config::Region::new("us-east-1"))
            .http_client(aws_smithy_mocks::create_mock_http_client())
            .interceptor(
                MockResponseInterceptor::new()
                    .rule_mode(RuleMode::MatchAny)
                    .with_rule(&rule),
            )
            .retry_config(RetryConfig::disabled())
            .build(),
    );
    (client, script)
}

async fn bus_with(client: Client, retry: RetryPolicy) -> EventBus {
    let publisher = EventBridgePublisher::builder()
        .bus("orders")
        .client(client)
        .retry(retry)
        .build()
        .await
        .unwrap();
    EventBus::builder()
        .mode(Mode::EventBridge)
        .in_memory_store()
        .publisher(Arc::new(publisher))
        .build()
        .unwrap()
}

fn ids(events: &[Event<CompanyCreated>]) -> Vec<String> {
    events.iter().map(|e| e.id().as_str().to_owned()).collect()
}

#[tokio::test(start_paused = true)]
async fn three_throttled_are_resent_one_access_denied_is_a_dead_letter_six_sent_once() {
    let events: Vec<Event<CompanyCreated>> = (0..10).map(|_| event(10)).collect();
    let all = ids(&events);
    let throttled = [all[1].clone(), all[4].clone(), all[8].clone()];
    let denied = all[6].clone();
    let (t, d) = (throttled.clone(), denied.clone());
    let (client, script) = scripted(
        move |call, id| match call {
            1 if t.iter().any(|x| x == id) => Answer::Fail("ThrottlingException"),
            1 if id == d => Answer::Fail("AccessDeniedException"),
            _ => Answer::Accept,
        },
        |_| false,
    );
    let bus = bus_with(client, RetryPolicy::default()).await;
    let outcome = bus.publish_batch(events.clone()).await.unwrap();

    let calls = script.calls();
    assert_eq!(calls.len(), 2, "one call, one re-send");
    assert_eq!(calls[0].ids, all);
    assert_eq!(
        calls[1].ids, throttled,
        "only the throttled entries are re-sent"
    );
    let sends = script.sends();
    for id in &all {
        let expected = if throttled.contains(id) { 2 } else { 1 };
        assert_eq!(sends[id], expected, "{id}");
    }

    for (o, id) in outcome.events.iter().zip(&all) {
        if *id == denied {
            match o.delivery() {
                Delivery::DeadLettered { error } => {
                    assert!(error.contains("AccessDeniedException"), "{error}")
                }
                other => panic!("the refused event was {other:?}"),
            }
        } else {
            assert_eq!(
                o.delivery(),
                &Delivery::Published {
                    remote_id: Some(format!("eb-{id}"))
                },
                "results in the caller's order"
            );
        }
    }
    let store = bus.store().unwrap();
    let stats = store.stats().await.unwrap();
    assert_eq!((stats.pending, stats.dead), (0, 1));
    let dead = store.dead_letters(10).await.unwrap();
    assert_eq!(dead[0].event.id.as_str(), denied);
    assert!(dead[0]
        .last_error
        .as_deref()
        .unwrap()
        .contains("AccessDeniedException"));
}

#[tokio::test(start_paused = true)]
async fn internal_failure_is_resent_until_accepted_and_other_codes_are_permanent() {
    let events: Vec<Event<CompanyCreated>> = (0..5).map(|_| event(10)).collect();
    let all = ids(&events);
    let (flaky, bad) = (all[0].clone(), all[3].clone());
    let (f, b) = (flaky.clone(), bad.clone());
    let (client, script) = scripted(
        move |call, id| {
            if id == f && call <= 3 {
                Answer::Fail("InternalFailure")
            } else if id == b {
                Answer::Fail("ValidationException")
            } else {
                Answer::Accept
            }
        },
        |_| false,
    );
    let bus = bus_with(client, RetryPolicy::default()).await;
    let outcome = bus.publish_batch(events).await.unwrap();
    let calls = script.calls();
    assert_eq!(calls.len(), 4);
    for call in &calls[1..] {
        assert_eq!(
            call.ids,
            std::slice::from_ref(&flaky),
            "only the InternalFailure entry is re-sent"
        );
    }
    assert!(matches!(
        outcome.events[0].delivery(),
        Delivery::Published { .. }
    ));
    assert!(
        matches!(outcome.events[3].delivery(), Delivery::DeadLettered { error } if error.contains("ValidationException"))
    );
    assert_eq!(script.sends()[&bad], 1, "a permanent code is never re-sent");
}

#[tokio::test(start_paused = true)]
async fn throttling_that_persists_stops_after_the_attempts_with_jittered_exponential_waits() {
    let policy = RetryPolicy {
        max_attempts: 6,
        base_delay: Duration::from_millis(100),
        max_delay: Duration::from_millis(1000),
        max_elapsed: Duration::from_secs(60),
    };
    let mut gaps_seen: Vec<Vec<Duration>> = Vec::new();
    for _ in 0..5 {
        let (client, script) = scripted(|_, _| Answer::Fail("ThrottlingException"), |_| false);
        let bus = bus_with(client, policy).await;
        let started = Instant::now();
        let outcome = bus.publish(event(10)).await.unwrap();
        assert!(
            matches!(outcome.delivery(), Delivery::FailedOver { error } if error.contains("ThrottlingException"))
        );
        let calls = script.calls();
        assert_eq!(calls.len(), 6, "max_attempts sends, no more");
        let gaps: Vec<Duration> = calls.windows(2).map(|w| w[1].at - w[0].at).collect();
        for (n, gap) in gaps.iter().enumerate() {
            // Before attempt n + 2 the wait is uniform in [0, cap(n + 2)].
            let cap = policy.delay_cap(n as u32 + 2);
            assert!(*gap <= cap, "wait {n}: {gap:?} > {cap:?}");
        }
        assert!(started.elapsed() <= Duration::from_millis(100 + 200 + 400 + 800 + 1000));
        let stats = bus.store().unwrap().stats().await.unwrap();
        assert_eq!((stats.pending, stats.dead), (1, 0), "failed over, not dead");
        gaps_seen.push(gaps);
    }
    // Full jitter: the waits differ from run to run.
    assert!(gaps_seen.windows(2).any(|w| w[0] != w[1]), "{gaps_seen:?}");
}

#[tokio::test(start_paused = true)]
async fn retries_stop_within_the_time_bound() {
    let policy = RetryPolicy {
        max_attempts: 1000,
        base_delay: Duration::from_millis(500),
        max_delay: Duration::from_millis(500),
        max_elapsed: Duration::from_secs(3),
    };
    let (client, script) = scripted(|_, _| Answer::Fail("InternalFailure"), |_| false);
    let bus = bus_with(client, policy).await;
    let started = Instant::now();
    let outcome = bus.publish(event(10)).await.unwrap();
    assert!(matches!(outcome.delivery(), Delivery::FailedOver { .. }));
    assert!(
        started.elapsed() <= Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let calls = script.calls().len();
    assert!(
        calls >= 6,
        "waits of at most 0.5 s within 3 s: {calls} calls"
    );
    assert!(calls < 1000);
}

#[tokio::test(start_paused = true)]
async fn a_call_that_keeps_failing_leaves_every_event_pending_in_the_store() {
    let (client, script) = scripted(|_, _| Answer::Accept, |_| true);
    let bus = bus_with(client, RetryPolicy::default()).await;
    let events: Vec<Event<CompanyCreated>> = (0..15).map(|_| event(10)).collect();
    let outcome = bus.publish_batch(events.clone()).await.unwrap();
    for o in &outcome.events {
        match o.delivery() {
            Delivery::FailedOver { error } => {
                assert!(error.contains("InternalException"), "{error}")
            }
            other => panic!("{other:?}"),
        }
    }
    // Two calls (10 + 5); a failed call is not re-sent by the publisher
    // (the SDK's retries, off here, are the ones for whole calls).
    assert_eq!(script.calls().len(), 2);
    let stats = bus.store().unwrap().stats().await.unwrap();
    assert_eq!((stats.pending, stats.dead), (15, 0));
    let stored: Vec<String> = bus
        .store()
        .unwrap()
        .peek(100)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.event.id.as_str().to_owned())
        .collect();
    assert_eq!(stored, ids(&events), "all of them, in order");
}

#[tokio::test(start_paused = true)]
async fn a_520_kb_event_is_a_dead_letter_and_no_call_is_made() {
    let (client, script) = scripted(|_, _| Answer::Accept, |_| false);
    let bus = bus_with(client, RetryPolicy::default()).await;
    let big = event(520 * 1024);
    let outcome = bus.publish(big.clone()).await.unwrap();
    match outcome.delivery() {
        Delivery::DeadLettered { error } => {
            assert!(error.contains("EntryTooLarge"), "{error}");
            assert_eq!(EntryError::of_dead_letter(error), EntryError::TooLarge);
            assert!(error.contains("262144-byte request limit"), "{error}");
            let size = events_core::wire::entry(
                &events_core::RawEvent::from_event(&big).unwrap(),
                "testclean.api",
            )
            .size();
            assert!(
                error.contains(&format!("the event is {size} bytes")),
                "{error}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(script.calls().is_empty(), "no call made");
    let stats = bus.store().unwrap().stats().await.unwrap();
    assert_eq!((stats.pending, stats.dead), (0, 1));

    // With the limit raised to 1 MiB the same event is sent.
    let (client, script) = scripted(|_, _| Answer::Accept, |_| false);
    let publisher = EventBridgePublisher::builder()
        .client(client)
        .max_request_bytes(1024 * 1024)
        .build()
        .await
        .unwrap();
    let bus = EventBus::builder()
        .mode(Mode::EventBridge)
        .in_memory_store()
        .publisher(Arc::new(publisher))
        .build()
        .unwrap();
    let outcome = bus.publish(big).await.unwrap();
    assert!(matches!(outcome.delivery(), Delivery::Published { .. }));
    assert_eq!(script.calls().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_mixed_batch_keeps_the_callers_order_across_concurrent_calls() {
    let (client, script) = scripted(|_, _| Answer::Accept, |_| false);
    let publisher = EventBridgePublisher::builder()
        .client(client)
        .concurrency(4)
        .build()
        .await
        .unwrap();
    let bus = EventBus::builder()
        .mode(Mode::EventBridge)
        .in_memory_store()
        .publisher(Arc::new(publisher))
        .build()
        .unwrap();
    // Sizes that force splits by size as well as by count, one too large.
    let events: Vec<Event<CompanyCreated>> = (0..57)
        .map(|i| {
            event(if i == 30 {
                300_000
            } else {
                (i * 7919) % 90_000 + 10
            })
        })
        .collect();
    let outcome = bus.publish_batch(events.clone()).await.unwrap();
    for (o, e) in outcome.events.iter().zip(&events) {
        assert_eq!(o.id(), e.id());
        if o.id() == events[30].id() {
            assert!(matches!(o.delivery(), Delivery::DeadLettered { .. }));
        } else {
            assert_eq!(
                o.delivery(),
                &Delivery::Published {
                    remote_id: Some(format!("eb-{}", e.id()))
                }
            );
        }
    }
    let sends = script.sends();
    assert_eq!(sends.len(), 56);
    assert!(sends.values().all(|&n| n == 1));
    for call in script.calls() {
        assert!(call.ids.len() <= 10);
    }
}

/// Concurrent publishes share one call: caller A's throttled entries are
/// sent again (and only those), caller B's refused entry is B's dead
/// letter, and each caller gets exactly its own outcomes, in its order.
#[tokio::test(start_paused = true)]
async fn concurrent_publishes_share_a_call_and_each_gets_its_own_results() {
    let a: Vec<Event<CompanyCreated>> = (0..4).map(|_| event(10)).collect();
    let b: Vec<Event<CompanyCreated>> = (0..3).map(|_| event(10)).collect();
    let c: Vec<Event<CompanyCreated>> = (0..3).map(|_| event(10)).collect();
    let throttled = [ids(&a)[0].clone(), ids(&a)[2].clone()];
    let denied = ids(&b)[1].clone();
    let (t, d) = (throttled.clone(), denied.clone());
    let (client, script) = scripted(
        move |call, id| match call {
            1 if t.iter().any(|x| x == id) => Answer::Fail("ThrottlingException"),
            _ if id == d => Answer::Fail("AccessDeniedException"),
            _ => Answer::Accept,
        },
        |_| false,
    );
    let publisher = EventBridgePublisher::builder()
        .bus("orders")
        .client(client)
        .linger(Duration::from_millis(50))
        .build()
        .await
        .unwrap();
    let bus = EventBus::builder()
        .mode(Mode::EventBridge)
        .in_memory_store()
        .publisher(Arc::new(publisher))
        .build()
        .unwrap();

    // A and B publish batches, C publishes its events one by one, all at
    // once (as many tasks would).
    let (out_a, out_b, out_c) = tokio::join!(
        bus.publish_batch(a.clone()),
        bus.publish_batch(b.clone()),
        futures_util::future::join_all(c.iter().map(|e| bus.publish(e.clone()))),
    );
    let calls = script.calls();
    assert_eq!(calls.len(), 2, "one shared call, one re-send: {calls:?}");
    let mut first = calls[0].ids.clone();
    first.sort();
    let mut all: Vec<String> = [ids(&a), ids(&b), ids(&c)].concat();
    all.sort();
    assert_eq!(first, all, "the first call carried all 10 events");
    assert_eq!(calls[1].ids, throttled, "only A's throttled entries again");

    let out_a = out_a.unwrap();
    assert_eq!(out_a.events.len(), 4);
    for (o, e) in out_a.events.iter().zip(&a) {
        assert_eq!(o.id(), e.id(), "A's results in A's order");
        assert_eq!(
            o.delivery(),
            &Delivery::Published {
                remote_id: Some(format!("eb-{}", e.id()))
            }
        );
    }
    let out_b = out_b.unwrap();
    assert_eq!(out_b.events.len(), 3);
    for (o, e) in out_b.events.iter().zip(&b) {
        assert_eq!(o.id(), e.id(), "B's results in B's order");
        if e.id().as_str() == denied {
            assert!(
                matches!(o.delivery(), Delivery::DeadLettered { error } if error.contains("AccessDeniedException")),
                "{:?}",
                o.delivery()
            );
        } else {
            assert_eq!(
                o.delivery(),
                &Delivery::Published {
                    remote_id: Some(format!("eb-{}", e.id()))
                }
            );
        }
    }
    for (o, e) in out_c.into_iter().zip(&c) {
        let o = o.unwrap();
        assert_eq!(o.id(), e.id());
        assert_eq!(
            o.delivery(),
            &Delivery::Published {
                remote_id: Some(format!("eb-{}", e.id()))
            }
        );
    }
    let stats = bus.store().unwrap().stats().await.unwrap();
    assert_eq!(
        (stats.pending, stats.dead),
        (0, 1),
        "only B's refused event"
    );
}
