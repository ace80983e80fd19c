//! The company example's code path in eventbridge mode against moto, as a
//! separate process configured only by its environment
//! (`EVENT_BUS_MODE=eventbridge`, `AWS_ENDPOINT_URL`): interop with the
//! Python `package-events-bus` both ways through EventBridge and SQS, and an
//! outage (moto killed and restarted) where nothing is lost or duplicated.

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use events_aws_tests::moto::{python, Moto};
use events_core::{wire, DomainEvent};
use events_examples::domain::events::CompanyCreated;
use serde_json::Value;

fn child(moto: &Moto, bus: &str, store: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_company_publisher"));
    cmd.envs(moto.env())
        .env("EVENT_BUS_MODE", "eventbridge")
        .env("EVENT_BUS_NAME", bus)
        .env("EVENT_BUS_STORE_PATH", store)
        .env("EVENT_BUS_CHECK", "false")
        // One SDK attempt: a dead endpoint fails fast (connection refused).
        .env("AWS_MAX_ATTEMPTS", "1")
        .env_remove("EVENT_BUS_SOURCE")
        .env_remove("AWS_PROFILE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    cmd
}

/// Runs the child to the end; its JSON lines.
fn run(mut cmd: Command) -> Vec<Value> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .expect("start company_publisher");
    assert!(
        out.status.success(),
        "company_publisher failed: {}",
        out.status
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn interop_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../interop/moto_interop.py")
}

fn python_run(moto: &Moto, args: &[&str], input: &str) -> Value {
    let mut child = Command::new(python())
        .arg(interop_script())
        .args(args)
        .envs(moto.env())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start python");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn event_ids(bodies: &[String]) -> Vec<String> {
    bodies
        .iter()
        .map(|b| {
            wire::decode_envelope(b)
                .unwrap()
                .event
                .id
                .as_str()
                .to_owned()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_publishes_through_moto_and_python_reads_what_the_queue_got() {
    let moto = Moto::start();
    let route = moto.bus_to_queue("company").await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = child(&moto, &route.bus, &dir.path().join("events.db"));
    cmd.env("EVENT_BUS_CHECK", "true").args(["publish", "5"]);
    let published = run(cmd);
    assert_eq!(published.len(), 5);
    for p in &published {
        assert_eq!(p["delivery"], "Published", "{p}");
        assert!(p["remote_id"].is_string(), "{p}");
    }

    let bodies = moto.drain(&route.queue_url).await;
    assert_eq!(bodies.len(), 5);
    let by_id: HashMap<String, &Value> = published
        .iter()
        .map(|p| (p["id"].as_str().unwrap().to_owned(), p))
        .collect();

    // Rust reads the envelope: EventBridge's id is the remote id we reported.
    let mut expected = HashMap::new();
    for body in &bodies {
        let envelope = wire::decode_envelope(body).unwrap();
        let p = by_id[envelope.event.id.as_str()];
        assert_eq!(envelope.id.as_deref(), p["remote_id"].as_str());
        let event = envelope.event.decode::<CompanyCreated>().unwrap();
        assert_eq!(event.company_name, p["company_name"].as_str().unwrap());
        expected.insert(envelope.event.id.as_str().to_owned(), event);
    }

    // Python's deserializer reads the same SQS bodies.
    let seen = python_run(
        &moto,
        &["decode-sqs"],
        &serde_json::to_string(&bodies).unwrap(),
    );
    let seen = seen.as_array().unwrap();
    assert_eq!(seen.len(), 5);
    for s in seen {
        let event = &expected[s["id"].as_str().unwrap()];
        assert_eq!(s["name"], CompanyCreated::EVENT_NAME);
        assert_eq!(
            s["occurred_on_micros"],
            event.occurred_on().timestamp_micros()
        );
        assert_eq!(s["utc_offset_seconds"], 0.0);
        assert_eq!(
            Value::Object(s["attributes"].as_object().unwrap().clone()),
            Value::Object(event.to_dict().unwrap())
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_published_by_the_python_package_are_read_by_rust() {
    let moto = Moto::start();
    let route = moto.bus_to_queue("from-python").await;
    let produced = python_run(&moto, &["publish", &route.bus, "testclean.api", "5"], "");
    let produced = produced.as_array().unwrap();
    assert_eq!(produced.len(), 5);

    let bodies = moto.drain(&route.queue_url).await;
    assert_eq!(bodies.len(), 5, "Python's publisher put 5 events");
    let mut by_id = HashMap::new();
    for body in &bodies {
        let envelope = wire::decode_envelope(body).unwrap();
        assert_eq!(envelope.detail_type, CompanyCreated::EVENT_NAME);
        assert_eq!(envelope.source.as_deref(), Some("testclean.api"));
        let event = envelope.event.decode::<CompanyCreated>().unwrap();
        by_id.insert(event.id().as_str().to_owned(), event);
    }
    for p in produced {
        let event = &by_id[p["id"].as_str().unwrap()];
        assert_eq!(
            event.occurred_on().timestamp_micros(),
            p["occurred_on_micros"].as_i64().unwrap(),
            "times exact to the microsecond"
        );
        assert_eq!(
            Value::Object(event.to_dict().unwrap()),
            p["attributes"].clone()
        );
    }
}

/// 500 publishes from the example's code path; moto is killed after 250 and
/// restarted (empty) after the rest, then the store is replayed by `replay`
/// (`publish_from_failover`) or by the background replayer.
async fn outage(replay_args: &[&str]) {
    let mut moto = Moto::start();
    let route = moto.bus_to_queue("outage").await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("events.db");

    let mut cmd = child(&moto, &route.bus, &store);
    cmd.args(["publish", "500", "250"]);
    let mut process = cmd.spawn().expect("start company_publisher");
    let mut stdin = process.stdin.take().unwrap();
    let mut lines = BufReader::new(process.stdout.take().unwrap()).lines();
    let mut published = Vec::new();
    let mut before = Vec::new();
    for line in lines.by_ref() {
        let value: Value = serde_json::from_str(&line.unwrap()).unwrap();
        if value.get("paused").is_some() {
            // Everything so far is in the queue: read it, then kill moto.
            before = event_ids(&moto.drain(&route.queue_url).await);
            moto.stop();
            writeln!(stdin, "go").unwrap();
            continue;
        }
        published.push(value);
    }
    assert!(process.wait().unwrap().success());
    assert_eq!(published.len(), 500);
    let (ok, failed_over): (Vec<&Value>, Vec<&Value>) =
        published.iter().partition(|p| p["delivery"] == "Published");
    assert_eq!(ok.len(), 250);
    assert_eq!(failed_over.len(), 250);
    assert!(failed_over
        .iter()
        .all(|p| p["delivery"].as_str().unwrap().starts_with("FailedOver")));
    assert_eq!(before.len(), 250, "the first 250 reached the queue");

    moto.restart();
    let route = moto.bus_to_queue("outage").await;
    let mut cmd = child(&moto, &route.bus, &store);
    cmd.args(replay_args);
    let report = run(cmd);
    assert_eq!(report.last().unwrap()["pending"], 0, "{report:?}");
    assert_eq!(report.last().unwrap()["dead"], 0, "{report:?}");

    let after = event_ids(&moto.drain(&route.queue_url).await);
    let all: Vec<&String> = before.iter().chain(&after).collect();
    let unique: BTreeSet<&String> = all.iter().copied().collect();
    assert_eq!(all.len(), 500, "none twice: {} messages", all.len());
    let expected: BTreeSet<String> = published
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        unique.into_iter().cloned().collect::<BTreeSet<String>>(),
        expected,
        "every one of the 500 ids"
    );
    let failed_ids: BTreeSet<String> = failed_over
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(after.into_iter().collect::<BTreeSet<_>>(), failed_ids);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_then_replay_loses_and_duplicates_nothing() {
    outage(&["replay", "1000"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_then_the_background_replayer_loses_and_duplicates_nothing() {
    outage(&["replayer"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_check_a_missing_bus_fails_the_start_up_clearly() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = child(&moto, "no-such-bus", &dir.path().join("events.db"));
    cmd.env("EVENT_BUS_CHECK", "true")
        .args(["publish", "1"])
        .stdin(Stdio::null())
        .stderr(Stdio::piped());
    let out = cmd.output().unwrap();
    assert!(!out.status.success(), "the start-up must fail");
    assert!(out.stdout.is_empty(), "nothing was published");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot set up the eventbridge publisher")
            && stderr.contains("event bus `no-such-bus` does not exist"),
        "{stderr}"
    );
}
