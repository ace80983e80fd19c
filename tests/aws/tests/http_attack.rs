//! The HTTP adapter under attack, over real sockets, in a child process
//! (`http_child`: `http::serve` with `HttpServerSettings::from_env`) held
//! to 1,024 open files (`ulimit -n 1024`, as a default Linux service):
//! 1,100 connections that send nothing, 100 that send their headers a byte
//! at a time and never finish, 200 that send a declared body at 1 byte/s
//! (half with the credential, half without). Each is closed by the server
//! within its timeout (short ones, configured here), and an authenticated
//! request sent in the middle of it is answered 200, as is one after it;
//! a kept-alive connection idle after its request is closed as well. With
//! timeouts longer than the test, idle connections filling every slot do
//! not delay an authenticated request: it takes the place of the one idle
//! the longest.
//!
//! Served by `axum::serve` as the example used to, the same attack exhausts
//! the descriptors and holds every connection for ever.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use events_core::Event;
use events_eventbridge::http::DISPATCH_PATH;
use events_examples::domain::events::CompanyCreated;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const KEY: &str = "attack-test-key";
/// Generous against a slow machine: every bound below is several times the
/// configured timeouts.
const DEADLINE: Duration = Duration::from_secs(60);
/// "At once" while idle connections fill every slot whose timeouts are 10
/// minutes: generous against a slow machine, and what an EventBridge API
/// destination waits (5 s) twice over.
const AT_ONCE: Duration = Duration::from_secs(10);

/// Kills the child when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `http_child` under a 1,024 open-files limit with these
/// timeouts (and the default 512 connections); its address.
fn start(header_timeout: &str, body_timeout: &str) -> (Server, SocketAddr) {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("ulimit -n 1024 && exec \"$0\"")
        .arg(env!("CARGO_BIN_EXE_http_child"))
        .env("EVENT_BUS_HTTP_API_KEY", KEY)
        .env("EVENT_BUS_HTTP_HEADER_TIMEOUT", header_timeout)
        .env("EVENT_BUS_HTTP_BODY_TIMEOUT", body_timeout)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start http_child");
    let stdout = child.stdout.take().expect("stdout");
    let server = Server(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    // `listening <addr> nofile <limit>`
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words.first(), Some(&"listening"), "{line}");
    assert_eq!(
        words.get(3),
        Some(&"1024"),
        "the child's open-files limit: {line}"
    );
    (server, words[1].parse().unwrap())
}

fn company_body() -> String {
    events_aws_tests::consume::envelope_body(&Event::new(CompanyCreated {
        company_id: uuid::Uuid::new_v4(),
        company_name: "Acme".into(),
        country_id: uuid::Uuid::new_v4(),
    }))
}

/// An authenticated request on a new connection: its status, and how long
/// it took (connect included).
async fn authenticated(addr: SocketAddr) -> (u16, Duration) {
    let start = Instant::now();
    let body = company_body();
    let request = format!(
        "POST {DISPATCH_PATH} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         x-events-key: {KEY}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let answer = tokio::time::timeout(DEADLINE, async {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.unwrap();
        String::from_utf8_lossy(&response).into_owned()
    })
    .await
    .expect("the authenticated request was not answered");
    let status = answer.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, start.elapsed())
}

/// Waits until the server closes `stream` (EOF or reset), reading and
/// dropping what it sends; how long that took from `since`, or `None` if it
/// was still open at the deadline.
async fn until_closed(mut stream: TcpStream, since: Instant) -> Option<Duration> {
    let mut buf = [0u8; 1024];
    tokio::time::timeout(DEADLINE, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return since.elapsed(),
                Ok(_) => {}
            }
        }
    })
    .await
    .ok()
}

/// Connects, sends `head`, then `trickle` one byte a `pace` until the
/// server closes the connection; how long it stayed open.
async fn attacker(
    addr: SocketAddr,
    head: String,
    trickle: u8,
    pace: Duration,
    since: Instant,
) -> Option<Duration> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let writer = tokio::spawn(async move {
        if write.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        let mut tick = tokio::time::interval(pace);
        loop {
            tick.tick().await;
            if write.write_all(&[trickle]).await.is_err() {
                return;
            }
        }
    });
    let mut buf = [0u8; 1024];
    let closed = tokio::time::timeout(DEADLINE, async {
        loop {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => return since.elapsed(),
                Ok(_) => {}
            }
        }
    })
    .await
    .ok();
    writer.abort();
    closed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_slow_header_and_slow_body_connections_are_closed_and_a_real_request_is_answered() {
    let (_server, addr) = start("1s", "2s");
    assert_eq!(authenticated(addr).await.0, 200, "before the attack");

    let since = Instant::now();
    let mut idle = Vec::new();
    for _ in 0..1_100 {
        let stream = TcpStream::connect(addr).await.unwrap();
        idle.push(tokio::spawn(until_closed(stream, since)));
    }
    let mut slow = Vec::new();
    for _ in 0..100 {
        // Headers that never end.
        let head = format!("POST {DISPATCH_PATH} HTTP/1.1\r\nHost: {addr}\r\nX-Slow: ");
        slow.push(tokio::spawn(attacker(
            addr,
            head,
            b'a',
            Duration::from_millis(200),
            since,
        )));
    }
    for i in 0..200 {
        // A declared body at 1 byte/s, with the credential for half of them.
        let credential = if i % 2 == 0 {
            format!("x-events-key: {KEY}\r\n")
        } else {
            String::new()
        };
        let head = format!(
            "POST {DISPATCH_PATH} HTTP/1.1\r\nHost: {addr}\r\n{credential}Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{"
        );
        slow.push(tokio::spawn(attacker(
            addr,
            head,
            b' ',
            Duration::from_secs(1),
            since,
        )));
    }

    // In the middle of it, a real request is answered.
    let (status, took) = authenticated(addr).await;
    assert_eq!(status, 200, "during the attack");
    assert!(took < DEADLINE, "{took:?}");

    let mut open = 0;
    let mut longest = Duration::ZERO;
    for task in idle.into_iter().chain(slow) {
        match task.await.unwrap() {
            Some(after) => longest = longest.max(after),
            None => open += 1,
        }
    }
    assert_eq!(
        open, 0,
        "connections still open after {DEADLINE:?} (of 1,400)"
    );
    eprintln!(
        "every attacking connection closed within {longest:?}; the real request took {took:?}"
    );

    // And the server is still up; a kept-alive connection idle after its
    // request is closed by the header timeout too.
    assert_eq!(authenticated(addr).await.0, 200, "after the attack");
    let (status, idle_for) = kept_alive(addr).await;
    assert_eq!(status, 200);
    assert!(
        idle_for.is_some(),
        "a kept-alive idle connection stayed open"
    );
}

/// An authenticated request on a kept-alive connection: its status, and
/// how long the connection then stayed open, idle, until the server closed
/// it (`None`: still open at the deadline).
async fn kept_alive(addr: SocketAddr) -> (u16, Option<Duration>) {
    let body = company_body();
    let request = format!(
        "POST {DISPATCH_PATH} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         x-events-key: {KEY}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    // The response: its head, then `Content-Length` bytes.
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    let status = tokio::time::timeout(DEADLINE, async {
        loop {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed before the response");
            response.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&response);
            let Some(head_end) = text.find("\r\n\r\n") else {
                continue;
            };
            let length: usize = text[..head_end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if response.len() >= head_end + 4 + length {
                return text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
            }
        }
    })
    .await
    .expect("the kept-alive request was not answered");
    (status, until_closed(stream, Instant::now()).await)
}

/// With timeouts far longer than the test (10 minutes), 1,100 idle
/// connections and 100 sending endless headers fill the 512 connections:
/// an authenticated request is still answered at once, taking the place of
/// an idle one (before, it waited in the accept queue for the attackers'
/// timeouts), and the server keeps within its descriptors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_is_answered_at_once_while_idle_connections_fill_every_slot() {
    let (_server, addr) = start("10m", "10m");
    let since = Instant::now();
    let mut idle = Vec::new();
    for _ in 0..1_100 {
        let stream = TcpStream::connect(addr).await.unwrap();
        idle.push(tokio::spawn(until_closed(stream, since)));
    }
    let mut slow = Vec::new();
    for _ in 0..100 {
        let head = format!("POST {DISPATCH_PATH} HTTP/1.1\r\nHost: {addr}\r\nX-Slow: ");
        slow.push(tokio::spawn(attacker(
            addr,
            head,
            b'a',
            Duration::from_millis(200),
            since,
        )));
    }
    for round in 0..3 {
        let (status, took) = authenticated(addr).await;
        assert_eq!(status, 200, "round {round}");
        eprintln!("round {round}: answered in {took:?} with every slot taken");
        // Far under the attackers' 10 minutes, however loaded the machine.
        assert!(
            took < AT_ONCE,
            "round {round}: {took:?} waiting behind idle connections"
        );
    }
    // The oldest idle connections were closed to make room: the first of
    // them is closed long before its 10-minute timeout.
    let first = idle.remove(0).await.unwrap();
    assert!(first.is_some(), "the oldest idle connection is still open");
    for task in idle.into_iter().chain(slow) {
        task.abort();
    }
}
