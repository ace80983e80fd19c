//! The moto harness: a real EventBridge and SQS API on loopback for tests.
//!
//! [`Moto::start`] installs `moto[server]` (and the Python
//! `package-events-bus`) through `scripts/moto install` into a venv under
//! `target/` on first use (PyPI is the only network it needs), starts
//! `moto_server` on a free `127.0.0.1` port as a child process, waits until it
//! answers, and stops it by PID when dropped. [`Moto::stop`] and
//! [`Moto::restart`] make outages (a restarted server starts empty, as moto
//! keeps its state in memory).
//!
//! A server that cannot be installed or started is a test failure (a panic
//! with the reason), never a skipped test.
//!
//! ```no_run
//! # async fn f() {
//! let moto = events_aws_tests::moto::Moto::start();
//! let route = moto.bus_to_queue("orders").await; // bus + rule -> SQS queue
//! // ... publish to `route.bus` with `moto.sdk_config().await` ...
//! let bodies = moto.drain(&route.queue_url).await;
//! # drop(bodies);
//! # }
//! ```

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_sdk_eventbridge::config::{Credentials, Region};

/// The region every client of the harness uses.
pub const REGION: &str = "us-east-1";

/// The workspace's root directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The venv's `python` (with `moto[server]`, `boto3` and
/// `package-events-bus`), installed once per test process by
/// `scripts/moto install`.
pub fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let script = workspace_root().join("scripts/moto");
        let out = Command::new("bash")
            .arg(&script)
            .arg("python")
            .stderr(Stdio::inherit())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        assert!(
            out.status.success(),
            "`scripts/moto install` failed (it needs python3 and PyPI); see the output above"
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text.lines().last().unwrap_or_default().trim();
        let path = PathBuf::from(line);
        let path = if path.is_absolute() {
            path
        } else {
            workspace_root().join(path)
        };
        assert!(
            path.exists(),
            "scripts/moto printed `{line}`, which does not exist"
        );
        path
    })
}

/// A running `moto_server`, stopped by PID when dropped.
pub struct Moto {
    port: u16,
    child: Option<Child>,
    log: PathBuf,
}

/// A bus whose rule sends every event to an SQS queue.
#[derive(Debug, Clone)]
pub struct Route {
    /// The bus name.
    pub bus: String,
    /// The queue's URL.
    pub queue_url: String,
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free loopback port");
    listener.local_addr().expect("local address").port()
}

fn answers(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request =
        "GET /moto-api/data.json HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
}

impl Moto {
    /// Installs (first use) and starts a server on a free loopback port.
    pub fn start() -> Moto {
        let python = python();
        let dir = python
            .parent()
            .and_then(Path::parent)
            .map(|venv| venv.join("logs"))
            .unwrap_or_else(std::env::temp_dir);
        std::fs::create_dir_all(&dir).expect("create the moto log directory");
        let mut failures = Vec::new();
        // A port found free can be taken before moto binds it: try another.
        for _ in 0..3 {
            let port = free_port();
            let mut moto = Moto {
                port,
                child: None,
                log: dir.join(format!("moto-{port}.log")),
            };
            match moto.spawn() {
                Ok(()) => return moto,
                Err(e) => failures.push(e),
            }
        }
        panic!("moto_server did not start:\n{}", failures.join("\n"));
    }

    fn spawn(&mut self) -> Result<(), String> {
        let bin = python().with_file_name("moto_server");
        let log = std::fs::File::create(&self.log).expect("create the moto log");
        let err = log.try_clone().expect("clone the log handle");
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &self.port.to_string()])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !answers(self.port) {
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                self.child = None;
                return Err(format!(
                    "moto_server exited ({status}) on port {}:\n{}",
                    self.port,
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                ));
            }
            if Instant::now() > deadline {
                self.stop();
                return Err(format!(
                    "moto_server did not answer on port {} within 30 s:\n{}",
                    self.port,
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// `http://127.0.0.1:{port}`: the `AWS_ENDPOINT_URL` of this server.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The server's PID, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server (by its PID) and waits until the port refuses
    /// connections. Its state is gone.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts a fresh (empty) server on the same port.
    pub fn restart(&mut self) {
        self.stop();
        if let Err(e) = self.spawn() {
            panic!("moto_server did not restart: {e}");
        }
    }

    /// The variables that point a process (ours or Python's) at this server,
    /// with fake credentials.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_REGION", REGION.to_owned()),
            ("AWS_DEFAULT_REGION", REGION.to_owned()),
            ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
            // What Python's package-events-bus reads.
            ("AWS_CLIENT_URL", self.endpoint()),
            ("AWS_REGION_NAME", REGION.to_owned()),
        ]
    }

    /// An `SdkConfig` for this server (fake static credentials, no profile
    /// files or instance metadata looked up).
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(events_eventbridge::https_client())
            .region(Region::new(REGION))
            .endpoint_url(self.endpoint())
            .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
            .load()
            .await
    }

    /// An EventBridge client for this server.
    pub async fn eventbridge(&self) -> aws_sdk_eventbridge::Client {
        aws_sdk_eventbridge::Client::new(&self.sdk_config().await)
    }

    /// An SQS client for this server.
    pub async fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.sdk_config().await)
    }

    /// Creates bus `bus`, a queue `{bus}-queue`, and a rule on the bus that
    /// sends every event to the queue.
    pub async fn bus_to_queue(&self, bus: &str) -> Route {
        let eb = self.eventbridge().await;
        let sqs = self.sqs().await;
        eb.create_event_bus()
            .name(bus)
            .send()
            .await
            .expect("create the event bus");
        let queue_url = sqs
            .create_queue()
            .queue_name(format!("{bus}-queue"))
            .send()
            .await
            .expect("create the queue")
            .queue_url
            .expect("queue url");
        let arn = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("queue attributes")
            .attributes
            .and_then(|mut a| a.remove(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
            .expect("queue arn");
        eb.put_rule()
            .name(format!("{bus}-all"))
            .event_bus_name(bus)
            .event_pattern(r#"{"source":[{"prefix":""}]}"#)
            .send()
            .await
            .expect("put the rule");
        eb.put_targets()
            .rule(format!("{bus}-all"))
            .event_bus_name(bus)
            .targets(
                aws_sdk_eventbridge::types::Target::builder()
                    .id("queue")
                    .arn(arn)
                    .build()
                    .expect("target"),
            )
            .send()
            .await
            .expect("put the target");
        Route {
            bus: bus.to_owned(),
            queue_url,
        }
    }

    /// Receives (and deletes) every message now in the queue; their bodies,
    /// in the order received.
    pub async fn drain(&self, queue_url: &str) -> Vec<String> {
        let sqs = self.sqs().await;
        let mut bodies = Vec::new();
        let mut empty = 0;
        while empty < 2 {
            let out = sqs
                .receive_message()
                .queue_url(queue_url)
                .max_number_of_messages(10)
                .visibility_timeout(300)
                .send()
                .await
                .expect("receive messages");
            let messages = out.messages.unwrap_or_default();
            if messages.is_empty() {
                empty += 1;
                continue;
            }
            empty = 0;
            let mut delete = sqs.delete_message_batch().queue_url(queue_url);
            for (i, m) in messages.into_iter().enumerate() {
                bodies.push(m.body.unwrap_or_default());
                delete = delete.entries(
                    aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(m.receipt_handle.unwrap_or_default())
                        .build()
                        .expect("delete entry"),
                );
            }
            delete.send().await.expect("delete messages");
        }
        bodies
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Counts the HTTP requests a client sends, by operation (the
/// `X-Amz-Target` header, e.g. `AWSEvents.PutEvents`), SDK retries included.
/// Add it to a real client with [`Moto::counted_eventbridge`].
#[derive(Debug, Clone, Default)]
pub struct CallCounter {
    calls: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl CallCounter {
    /// The requests sent so far for `target` (e.g. `AWSEvents.PutEvents`).
    pub fn count(&self, target: &str) -> usize {
        self.calls
            .lock()
            .map(|c| c.iter().filter(|t| *t == target).count())
            .unwrap_or(0)
    }

    /// Every request's target, in order.
    pub fn all(&self) -> Vec<String> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

impl aws_sdk_eventbridge::config::Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CallCounter"
    }

    fn read_before_transmit(
        &self,
        context: &aws_sdk_eventbridge::config::interceptors::BeforeTransmitInterceptorContextRef<
            '_,
        >,
        _runtime_components: &aws_sdk_eventbridge::config::RuntimeComponents,
        _cfg: &mut aws_sdk_eventbridge::config::ConfigBag,
    ) -> Result<(), aws_sdk_eventbridge::error::BoxError> {
        let target = context
            .request()
            .headers()
            .get("x-amz-target")
            .unwrap_or("?")
            .to_owned();
        if let Ok(mut calls) = self.calls.lock() {
            calls.push(target);
        }
        Ok(())
    }
}

impl Moto {
    /// An EventBridge client for this server whose requests `counter` counts.
    pub async fn counted_eventbridge(&self, counter: &CallCounter) -> aws_sdk_eventbridge::Client {
        let config = aws_sdk_eventbridge::config::Builder::from(&self.sdk_config().await)
            .interceptor(counter.clone())
            .build();
        aws_sdk_eventbridge::Client::from_conf(config)
    }
}
