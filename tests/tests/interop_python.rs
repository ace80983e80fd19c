//! Interop with the real Python `package-events-bus`, both directions.
//!
//! The test creates a venv under cargo's target tmp dir and installs the
//! package from PyPI on first run. A machine without `python3` fails these
//! tests (with the reason): they are never skipped.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use events_core::{wire, DomainEvent, Event, RawEvent};
use serde_json::Value;

/// The version the tests were written against.
const PACKAGE: &str = "package-events-bus==0.1.46";

// The seed's event, as the company example declares it.
use events_examples::domain::events::CompanyCreated;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("interop/interop.py")
}

/// The venv's python, created once per test binary. No Python on the
/// machine is a failure that says so, never a silently passing test.
fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let system = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned());
        if let Err(e) = Command::new(&system).arg("--version").output() {
            panic!("cannot run `{system}` ({e}): the Python interop tests need Python 3.10+ (set PYTHON to its path)");
        }
        let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("interop-venv");
        let python = venv.join("bin/python");
        let marker = venv.join(".installed");
        if std::fs::read_to_string(&marker).ok().as_deref() != Some(PACKAGE) {
            let status = Command::new(&system).args(["-m", "venv"]).arg(&venv).status().expect("run python -m venv");
            assert!(status.success(), "python -m venv failed");
            let status = Command::new(&python)
                .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", PACKAGE])
                .status()
                .expect("run pip");
            assert!(status.success(), "pip install {PACKAGE} failed");
            std::fs::write(&marker, PACKAGE).expect("write venv marker");
        }
        python
    })
}

fn run(python: &Path, mode: &str, input: &str) -> Value {
    let mut child = Command::new(python)
        .arg(script())
        .arg(mode)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start python");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("python output");
    assert!(
        out.status.success(),
        "python {mode} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("python printed JSON")
}

fn sample() -> CompanyCreated {
    CompanyCreated {
        company_id: uuid::Uuid::parse_str("123e4567-e89b-12d3-a456-426614174000").unwrap(),
        company_name: "Ñandú & Co — \"quoted\" \u{1F680}".to_owned(),
        country_id: uuid::Uuid::parse_str("123e4567-e89b-12d3-a456-426614174001").unwrap(),
    }
}

#[test]
fn rust_detail_is_read_by_python_event_deserializer() {
    let python = python();
    let event = Event::new(sample());
    let raw = RawEvent::from_event(&event).unwrap();
    let detail = wire::encode_detail(&raw);

    let seen = run(python, "decode", &detail);
    assert_eq!(seen["id"], event.id().as_str());
    assert_eq!(seen["name"], CompanyCreated::EVENT_NAME);
    assert_eq!(
        seen["occurred_on_micros"],
        event.occurred_on().timestamp_micros()
    );
    assert_eq!(seen["utc_offset_seconds"], 0.0);
    assert_eq!(
        Value::Object(seen["attributes"].as_object().unwrap().clone()),
        Value::Object(event.to_dict().unwrap())
    );
}

#[test]
fn python_serialized_event_is_read_by_rust() {
    let python = python();
    let expected = sample();
    let produced = run(
        python,
        "encode",
        &serde_json::to_string(&Value::Object(expected.to_dict().unwrap())).unwrap(),
    );
    let detail = produced["detail"].as_str().unwrap();

    let raw = wire::decode_detail(detail).unwrap();
    let event = raw.decode::<CompanyCreated>().unwrap();
    assert_eq!(event.id().as_str(), produced["id"].as_str().unwrap());
    assert_eq!(
        event.occurred_on().timestamp_micros(),
        produced["occurred_on_micros"].as_i64().unwrap()
    );
    assert_eq!(event.payload(), &expected);

    // The same detail inside the EventBridge envelope an SQS queue receives.
    let envelope = serde_json::json!({
        "version": "0", "id": "e0", "detail-type": CompanyCreated::EVENT_NAME, "source": "testclean.api",
        "account": "123456789012", "time": "2026-11-26T10:15:30Z", "region": "us-east-1", "resources": [],
        "detail": serde_json::from_str::<Value>(detail).unwrap(),
    });
    let via_envelope = wire::decode_envelope(&envelope.to_string())
        .unwrap()
        .event
        .decode::<CompanyCreated>()
        .unwrap();
    assert_eq!(via_envelope, event);
}

// ------------------------------------------------------------ commands

/// A command, named as the Python package names them.
#[derive(DomainEvent, Debug, Clone, PartialEq)]
#[event(
    company = "acme",
    service = "billing",
    version = 1,
    message_type = "command",
    resource = "invoice",
    action = "send"
)]
struct SendInvoice {
    invoice_id: String,
    copies: u32,
}

/// The command's one handler: the commands it was given.
#[derive(Clone, Default)]
struct Sender(std::sync::Arc<std::sync::Mutex<Vec<(String, i64, SendInvoice)>>>);

impl events_core::Handler<SendInvoice> for Sender {
    async fn handle(&self, command: &Event<SendInvoice>) -> events_core::HandlerResult {
        self.0.lock().unwrap().push((
            command.id().to_string(),
            command.occurred_on().timestamp_micros(),
            command.payload().clone(),
        ));
        Ok(())
    }
}

#[tokio::test]
async fn a_python_command_is_handled_by_its_rust_handler() {
    let python = python();
    let produced = run(
        python,
        "encode-command",
        r#"{"invoice_id": "INV-7", "copies": 2}"#,
    );
    assert_eq!(produced["name"], "acme.billing.1.command.invoice.send");
    assert_eq!(SendInvoice::EVENT_NAME, produced["name"].as_str().unwrap());
    let detail: Value = serde_json::from_str(produced["detail"].as_str().unwrap()).unwrap();
    let body = serde_json::json!({
        "version": "0", "id": "e0", "detail-type": SendInvoice::EVENT_NAME, "source": "acme.billing",
        "account": "123456789012", "time": "2026-11-26T10:15:30Z", "region": "us-east-1", "resources": [],
        "detail": detail,
    });

    let sender = Sender::default();
    let bus = events_core::EventBus::builder()
        .discover(false)
        .without_store()
        .register_handler_named("send_invoice", sender.clone())
        .build()
        .unwrap();
    let outcomes = bus
        .receive(&body.to_string())
        .unwrap()
        .dispatch()
        .await
        .unwrap();
    assert_eq!(outcomes.len(), 1);
    assert_eq!(
        *sender.0.lock().unwrap(),
        [(
            produced["id"].as_str().unwrap().to_owned(),
            produced["occurred_on_micros"].as_i64().unwrap(),
            SendInvoice {
                invoice_id: "INV-7".into(),
                copies: 2
            }
        )]
    );
}

#[test]
fn a_rust_command_is_decoded_by_python() {
    let python = python();
    let command = Event::new(SendInvoice {
        invoice_id: "INV-8 \u{1F680}".into(),
        copies: 3,
    });
    let raw = RawEvent::from_event(&command).unwrap();
    let body = serde_json::json!({
        "version": "0", "detail-type": raw.name, "source": "acme.billing",
        "detail": serde_json::from_str::<Value>(&wire::encode_detail(&raw)).unwrap(),
    });
    let seen = run(python, "decode-command", &body.to_string());
    assert_eq!(seen["id"], command.id().as_str());
    assert_eq!(seen["name"], "acme.billing.1.command.invoice.send");
    assert_eq!(
        seen["occurred_on_micros"],
        command.occurred_on().timestamp_micros()
    );
    assert_eq!(
        Value::Object(seen["attributes"].as_object().unwrap().clone()),
        Value::Object(command.to_dict().unwrap())
    );
}
