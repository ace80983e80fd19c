//! `EventBus::receive` reads an envelope body in one pass and decodes its
//! event once, straight into its type. It must say and do exactly what the
//! full decoder followed by `receive_raw` says and does
//! (`wire::decode_envelope` + `EventBus::receive_raw`, the path consumers
//! took before): the same event, the same handlers, the same outcomes, and
//! for a body that is not an event the same error, naming the same field.

use std::sync::Arc;
use std::sync::Mutex;

use events_core::{wire, DomainEvent, Event, EventBus, Handler, HandlerResult, HandlerStatus};

#[derive(DomainEvent, Debug, Clone)]
#[event(
    company = "testclean",
    service = "api",
    version = 1,
    resource = "tenant",
    action = "opened"
)]
struct TenantOpened {
    tenant_id: uuid::Uuid,
    tenant_name: String,
    seats: u32,
}

/// Remembers what it saw; fails for a tenant named "fail" and panics for
/// one named "panic".
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<(String, String, u32)>>>);

impl Handler<TenantOpened> for Seen {
    async fn handle(&self, event: &Event<TenantOpened>) -> HandlerResult {
        match event.tenant_name.as_str() {
            "fail" => return Err("refused".into()),
            "panic" => panic!("handler blew up"),
            _ => {}
        }
        self.0.lock().unwrap().push((
            event.id().to_string(),
            event.occurred_on().to_rfc3339(),
            event.seats,
        ));
        Ok(())
    }
}

fn bus(seen: &Seen) -> EventBus {
    EventBus::builder()
        .without_store()
        .discover(false)
        .register_handler_named::<TenantOpened, _>("first", seen.clone())
        .register_handler_named::<TenantOpened, _>("second", seen.clone())
        .build()
        .unwrap()
}

const NAME: &str = "testclean.api.1.event.tenant.opened";
const ATTRS: &str = r#"{\"tenant_id\":\"6a1f9f7e-1b2c-4d3e-8f90-112233445566\",\"tenant_name\":\"Acme\",\"seats\":12}"#;

fn envelope(detail_type: &str, detail: &str) -> String {
    format!(
        r#"{{"version":"0","id":"e-1","detail-type":{detail_type},"source":"testclean.api","account":"123456789012","time":"2026-11-27T10:15:30Z","region":"us-east-1","resources":[],"detail":{detail}}}"#
    )
}

fn detail(id: &str, kind: &str, occurred_on: &str, attributes: &str) -> String {
    format!(r#"{{"id":{id},"type":{kind},"occurred_on":{occurred_on},"attributes":{attributes}}}"#)
}

/// Bodies: well-formed in every accepted form, and broken in every place.
fn bodies() -> Vec<String> {
    let dt = format!("\"{NAME}\"");
    let id = "\"0b5e7c3a-1111-4f6e-9a51-7c0d0c7d9a01\"";
    let at = "\"2026-11-27T08:36:27.989614+00:00\"";
    let attrs = format!("\"{ATTRS}\"");
    let good = detail(id, &dt, at, &attrs);
    let mut bodies = vec![
        envelope(&dt, &good),
        format!("  \n{}", envelope(&dt, &good)),
        // Escapes in the name, the id, the time.
        envelope(
            "\"testclean\\u002eapi.1.event.tenant.opened\"",
            &detail(
                "\"0b5e\\u0037c3a\"",
                "\"testclean.api.1.event.tenant\\u002eopened\"",
                at,
                &attrs,
            ),
        ),
        // Other time forms.
        envelope(&dt, &detail(id, &dt, "\"2026-11-27T08:36:27Z\"", &attrs)),
        envelope(
            &dt,
            &detail(id, &dt, "\"2026-11-27T08:36:27.5+02:00\"", &attrs),
        ),
        envelope(&dt, &detail(id, &dt, "\"2026-11-27 08:36:27\"", &attrs)),
        envelope(
            &dt,
            &detail(id, &dt, "\"2016-12-31T23:59:60.000000+00:00\"", &attrs),
        ),
        // Attributes as an object.
        envelope(
            &dt,
            &detail(
                id,
                &dt,
                at,
                r#"{"tenant_id":"6a1f9f7e-1b2c-4d3e-8f90-112233445566","tenant_name":"Acme","seats":3}"#,
            ),
        ),
        // No `type` in the detail: the envelope's name.
        envelope(
            &dt,
            &format!(r#"{{"id":{id},"occurred_on":{at},"attributes":{attrs}}}"#),
        ),
        // Handlers that fail and panic.
        envelope(&dt, &detail(id, &dt, at, &attrs.replace("Acme", "fail"))),
        envelope(&dt, &detail(id, &dt, at, &attrs.replace("Acme", "panic"))),
        // Nobody's event, with good and bad attributes.
        envelope(
            "\"testclean.api.1.event.tenant.closed\"",
            &detail(id, "\"testclean.api.1.event.tenant.closed\"", at, &attrs),
        ),
        envelope(
            "\"testclean.api.1.event.tenant.closed\"",
            &detail(id, "\"testclean.api.1.event.tenant.closed\"", at, "\"[1]\""),
        ),
        envelope(
            "\"testclean.api.1.event.tenant.closed\"",
            &detail(
                id,
                "\"testclean.api.1.event.tenant.closed\"",
                at,
                "\"{oops\"",
            ),
        ),
        // Broken envelopes.
        String::new(),
        "[]".into(),
        "null".into(),
        format!("[{}]", envelope(&dt, &good)),
        format!("{} trailing", envelope(&dt, &good)),
        envelope("null", &good),
        envelope("42", &good),
        envelope(&dt, "null"),
        envelope(&dt, "[1,2]"),
        envelope(&dt, "\"text\""),
        envelope(&dt, &good).replace(
            r#""source":"testclean.api","#,
            r#""source":"a","source":"b","#,
        ),
        envelope(&dt, &good).replace(r#""resources":[],"#, r#""resources":[1,{"a":2}],"#),
        envelope(&dt, &good).replace(r#""region":"us-east-1","#, r#""region":null,"#),
        format!(r#"{{"detail-type":{dt}}}"#),
        format!(r#"{{"detail":{good}}}"#),
        format!(r#"{{"detail-type":{dt},"detail":{good},"detail":{good}}}"#),
        // Broken details.
        envelope(
            &dt,
            &detail(id, "\"testclean.api.1.event.tenant.closed\"", at, &attrs),
        ),
        envelope(&dt, &detail(id, "null", at, &attrs)),
        envelope(&dt, &detail("\"\"", &dt, at, &attrs)),
        envelope(&dt, &detail("7", &dt, at, &attrs)),
        envelope(&dt, &detail(id, &dt, "\"yesterday\"", at)),
        envelope(
            &dt,
            &detail(id, &dt, "\"0000-01-01T00:00:00.000000+00:00\"", &attrs),
        ),
        envelope(
            &dt,
            &detail(id, &dt, "\"2026-02-30T10:15:30.000000+00:00\"", &attrs),
        ),
        envelope(&dt, &detail(id, &dt, "12", &attrs)),
        envelope(
            &dt,
            &format!(r#"{{"type":{dt},"occurred_on":{at},"attributes":{attrs}}}"#),
        ),
        envelope(
            &dt,
            &format!(r#"{{"id":{id},"type":{dt},"attributes":{attrs}}}"#),
        ),
        envelope(
            &dt,
            &format!(r#"{{"id":{id},"type":{dt},"occurred_on":{at}}}"#),
        ),
        envelope(
            &dt,
            &format!(
                r#"{{"id":{id},"id":{id},"type":{dt},"occurred_on":{at},"attributes":{attrs}}}"#
            ),
        ),
        // Broken attributes: not an object, not JSON, wrong for the type.
        envelope(&dt, &detail(id, &dt, at, "\"[1]\"")),
        envelope(&dt, &detail(id, &dt, at, "\"{oops\"")),
        envelope(&dt, &detail(id, &dt, at, "42")),
        envelope(&dt, &detail(id, &dt, at, "null")),
        envelope(&dt, &detail(id, &dt, at, "[]")),
        envelope(
            &dt,
            &detail(id, &dt, at, &attrs.replace("12", "\\\"many\\\"")),
        ),
        envelope(
            &dt,
            &detail(id, &dt, at, &attrs.replace(",\\\"seats\\\":12", "")),
        ),
        envelope(
            &dt,
            &detail(id, &dt, at, &attrs.replace("6a1f9f7e", "zzzz")),
        ),
        envelope(&dt, &detail(id, &dt, at, &attrs.replace("}", "} x"))),
    ];
    // Every body cut short.
    let whole = envelope(&dt, &good);
    bodies.extend((0..whole.len()).step_by(7).map(|n| whole[..n].to_owned()));
    bodies
}

/// What a body comes to, as text to compare: the error, or the event's
/// identity, its handlers, their outcomes and what they saw.
async fn outcome(
    bus: &EventBus,
    seen: &Seen,
    received: Result<events_core::Received, String>,
) -> String {
    seen.0.lock().unwrap().clear();
    let received = match received {
        Ok(received) => received,
        Err(e) => return format!("error: {e}"),
    };
    let head = format!(
        "{} {} routed={} handlers={:?}",
        received.name(),
        received.id(),
        received.is_routed(),
        received.handler_names().collect::<Vec<_>>()
    );
    let _ = bus;
    let run = match received.dispatch().await {
        Ok(outcomes) => format!(
            "{:?}",
            outcomes
                .iter()
                .map(|o| (o.handler.to_string(), o.status.clone()))
                .collect::<Vec<_>>()
        ),
        Err(e) => format!("dispatch error: {e}"),
    };
    format!("{head} {run} saw={:?}", seen.0.lock().unwrap())
}

#[tokio::test]
async fn receive_says_and_does_what_the_full_decoder_and_receive_raw_do() {
    let seen = Seen::default();
    let bus = bus(&seen);
    let mut accepted = 0;
    for body in bodies() {
        let one_pass = outcome(&bus, &seen, bus.receive(&body).map_err(|e| e.to_string())).await;
        let full = outcome(
            &bus,
            &seen,
            wire::decode_envelope(&body)
                .map(|envelope| bus.receive_raw(&envelope.event))
                .map_err(|e| e.to_string()),
        )
        .await;
        assert_eq!(one_pass, full, "body: {body}");
        if !one_pass.starts_with("error") {
            accepted += 1;
        }
    }
    // The corpus does reach the handlers.
    assert!(accepted >= 12, "{accepted}");
}

#[tokio::test]
async fn a_received_event_reaches_its_handlers_once_each_with_its_identity() {
    let seen = Seen::default();
    let bus = bus(&seen);
    let body = &bodies()[0];
    let received = bus.receive(body).unwrap();
    assert_eq!(received.name(), NAME);
    assert_eq!(
        received.id().as_str(),
        "0b5e7c3a-1111-4f6e-9a51-7c0d0c7d9a01"
    );
    let outcomes = received.dispatch().await.unwrap();
    assert_eq!(outcomes.len(), 2);
    assert!(outcomes
        .iter()
        .all(|o| o.status == HandlerStatus::Succeeded));
    assert_eq!(outcomes[0].handler, "first");
    assert_eq!(outcomes[1].handler, "second");
    let seen = seen.0.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![
            (
                "0b5e7c3a-1111-4f6e-9a51-7c0d0c7d9a01".to_owned(),
                "2026-11-27T08:36:27.989614+00:00".to_owned(),
                12
            );
            2
        ]
    );
}

#[tokio::test]
async fn skipping_runs_the_others_and_a_failure_is_reported_beside_the_successes() {
    let seen = Seen::default();
    let bus = bus(&seen);
    let body = &bodies()[0];
    let outcomes = bus
        .receive(body)
        .unwrap()
        .dispatch_skipping(|h| h == "first")
        .await
        .unwrap();
    assert_eq!(outcomes.len(), 1);
    assert_eq!(outcomes[0].handler, "second");
    assert_eq!(seen.0.lock().unwrap().len(), 1);

    let failing = envelope(
        &format!("\"{NAME}\""),
        &detail(
            "\"f-1\"",
            &format!("\"{NAME}\""),
            "\"2026-11-27T08:36:27.989614+00:00\"",
            &format!("\"{}\"", ATTRS.replace("Acme", "fail")),
        ),
    );
    let outcomes = bus
        .receive(&failing)
        .unwrap()
        .dispatch()
        .await
        .unwrap()
        .into_vec();
    assert_eq!(
        outcomes
            .iter()
            .map(|o| o.status.clone())
            .collect::<Vec<_>>(),
        vec![
            HandlerStatus::Failed("refused".into()),
            HandlerStatus::Failed("refused".into())
        ]
    );
}
