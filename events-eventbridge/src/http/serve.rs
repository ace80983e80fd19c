//! Serving the dispatch router on a socket with the limits a public
//! endpoint needs: header-read and body-read timeouts, and a bound on open
//! connections ([`serve`], [`HttpServerSettings`]).
//!
//! `axum::serve` has none of them: a client that connects and sends
//! nothing, or its headers or body a byte at a time, holds a connection and
//! a file descriptor for ever, and a thousand of them take a process with
//! the usual 1,024-descriptor limit down for everyone, credential or not.
//! Here each connection is hyper's HTTP/1 connection with its header-read
//! timeout (on tokio's timer), each request body has a deadline, and the
//! server keeps at most [`HttpServerSettings::max_connections`] open: past
//! it a new connection takes the place of the one idle the longest (no
//! request in progress), so a client that sends a request is served at
//! once however many connections sit idle, and only while every connection
//! has a request in progress do new ones wait in the kernel's accept queue
//! (costing this process no descriptor).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::Router;
use hyper::body::{Bytes, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify, Semaphore};

use super::{config_error, env, HttpError};

/// The settings of [`serve`]. [`Default`] is what a public endpoint needs;
/// [`from_env`](Self::from_env) reads `EVENT_BUS_HTTP_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpServerSettings {
    /// The longest a connection may take to send a request's headers,
    /// counted from when it waits for a request: a new connection that
    /// sends nothing, one sending its headers too slowly, and a kept-alive
    /// connection idle between requests (this is also the idle keep-alive
    /// timeout) are closed when it passes. Default 10 s
    /// (`EVENT_BUS_HTTP_HEADER_TIMEOUT`).
    pub header_timeout: Duration,
    /// The longest a request's body may take to arrive, counted from its
    /// headers: past it the request is answered 408 and the connection
    /// closed. Default 30 s (`EVENT_BUS_HTTP_BODY_TIMEOUT`).
    pub body_timeout: Duration,
    /// The most connections open at once: past it a new connection takes
    /// the place of the one idle the longest (no request in progress),
    /// which is closed; while every one has a request in progress, new
    /// ones wait in the kernel's accept queue. Keep it under the process's
    /// descriptor limit (`ulimit -n`). Default 512
    /// (`EVENT_BUS_HTTP_MAX_CONNECTIONS`).
    pub max_connections: usize,
}

impl Default for HttpServerSettings {
    fn default() -> Self {
        HttpServerSettings {
            header_timeout: Self::DEFAULT_HEADER_TIMEOUT,
            body_timeout: Self::DEFAULT_BODY_TIMEOUT,
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
        }
    }
}

impl HttpServerSettings {
    /// The default header-read (and idle keep-alive) timeout: 10 s.
    pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
    /// The default body-read timeout: 30 s.
    pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);
    /// The default bound on open connections: 512, half the usual
    /// descriptor limit.
    pub const DEFAULT_MAX_CONNECTIONS: usize = 512;

    /// The settings of the environment, defaults for what is unset (or
    /// empty):
    ///
    /// | variable | meaning | default |
    /// | --- | --- | --- |
    /// | `EVENT_BUS_HTTP_HEADER_TIMEOUT` | time to send a request's headers, also the idle keep-alive timeout (`10s`, `500ms`, `1m`) | `10s` |
    /// | `EVENT_BUS_HTTP_BODY_TIMEOUT` | time to send a request's body after its headers | `30s` |
    /// | `EVENT_BUS_HTTP_MAX_CONNECTIONS` | connections open at once, 1 to 1048576 | `512` |
    ///
    /// # Errors
    ///
    /// [`HttpError::Config`] naming the variable, its value and what is
    /// accepted.
    pub fn from_env() -> Result<Self, HttpError> {
        Self::from_lookup(|var| std::env::var(var).ok())
    }

    /// As [`from_env`](Self::from_env), reading the variables through
    /// `lookup`.
    ///
    /// ```
    /// use events_eventbridge::http::HttpServerSettings;
    /// use std::time::Duration;
    ///
    /// let env = |var: &str| (var == "EVENT_BUS_HTTP_HEADER_TIMEOUT").then(|| "5s".to_owned());
    /// let settings = HttpServerSettings::from_lookup(env).unwrap();
    /// assert_eq!(settings.header_timeout, Duration::from_secs(5));
    /// assert_eq!(settings.max_connections, 512);
    /// ```
    ///
    /// # Errors
    ///
    /// As [`from_env`](Self::from_env).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, HttpError> {
        let get = |var: &str| lookup(var).filter(|v| !v.trim().is_empty());
        let mut settings = HttpServerSettings::default();
        if let Some(v) = get(env::HEADER_TIMEOUT) {
            settings.header_timeout = events_core::config::parse_duration(env::HEADER_TIMEOUT, &v)?;
        }
        if let Some(v) = get(env::BODY_TIMEOUT) {
            settings.body_timeout = events_core::config::parse_duration(env::BODY_TIMEOUT, &v)?;
        }
        if let Some(v) = get(env::MAX_CONNECTIONS) {
            settings.max_connections = v
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=1 << 20).contains(n))
                .ok_or_else(|| {
                    config_error(
                        env::MAX_CONNECTIONS,
                        v,
                        "a number of connections from 1 to 1048576, e.g. `512`",
                    )
                })?;
        }
        Ok(settings)
    }
}

/// Serves `router` on `listener` with `settings`' timeouts and connection
/// bound, until the process ends. See [`serve_with_shutdown`] to stop on a
/// signal.
///
/// ```no_run
/// use events_core::EventBus;
/// use events_eventbridge::http::{serve, DispatchRouter, HttpServerSettings};
/// use events_eventbridge::Processor;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let bus = EventBus::builder().without_store().build()?;
/// let router = DispatchRouter::from_env(Processor::new(bus))?.build()?;
/// let listener = tokio::net::TcpListener::bind("0.0.0.0:8080").await?;
/// serve(listener, router, HttpServerSettings::from_env()?).await;
/// # Ok(()) }
/// ```
pub async fn serve(listener: TcpListener, router: Router, settings: HttpServerSettings) {
    serve_with_shutdown(listener, router, settings, std::future::pending()).await
}

/// As [`serve`], until `shutdown` completes: then no connection is
/// accepted, each open one finishes the request it is on (an idle one
/// closes at once), and this returns when they are all closed.
///
/// At [`HttpServerSettings::max_connections`], a new connection takes the
/// place of the open one idle the longest (one with no request in
/// progress: it sent nothing yet, is sending its headers, or is kept alive
/// between requests), which is closed, as nginx reuses its idle
/// connections: a client sending a request is served at once however many
/// connections sit idle. Only when every open connection has a request in
/// progress does a new one wait for one to finish.
///
/// Accept errors do not end it: a connection reset before it was accepted
/// is skipped; running out of descriptors (or another error of the
/// listener) is logged and retried after 100 ms, while the open
/// connections go on and close by their timeouts.
pub async fn serve_with_shutdown(
    listener: TcpListener,
    router: Router,
    settings: HttpServerSettings,
    shutdown: impl Future<Output = ()> + Send,
) {
    let slots = Arc::new(Semaphore::new(settings.max_connections.max(1)));
    let open = Arc::new(OpenConnections::default());
    // Each connection holds a receiver: `closed()` waits for them all.
    let (stop, stopped) = watch::channel(false);
    let mut shutdown = pin!(shutdown);
    let mut full = false;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (stream, remote) = match accepted {
            Ok(accepted) => accepted,
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "cannot accept an HTTP connection (out of file descriptors?): retrying in 100 ms");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let slot = match Arc::clone(&slots).try_acquire_owned() {
            Ok(slot) => {
                full = false;
                slot
            }
            Err(_) => {
                let evicted = open.close_longest_idle();
                if !full {
                    full = true;
                    tracing::warn!(
                        max_connections = settings.max_connections,
                        "HTTP connection limit reached: new connections take the place of idle ones \
                         (or wait while every one has a request in progress); EVENT_BUS_HTTP_MAX_CONNECTIONS"
                    );
                }
                if !evicted {
                    tracing::debug!(%remote, "every HTTP connection has a request in progress: waiting for one to finish");
                }
                let slot = tokio::select! {
                    slot = Arc::clone(&slots).acquire_owned() => slot,
                    () = &mut shutdown => break,
                };
                let Ok(slot) = slot else { break }; // never closed
                slot
            }
        };
        let router = router.clone();
        let mut stopped = stopped.clone();
        let (id, state) = open.insert();
        let open = Arc::clone(&open);
        tokio::spawn(async move {
            let body_timeout = settings.body_timeout;
            let service_state = Arc::clone(&state);
            let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
                let in_flight = InFlight::new(Arc::clone(&service_state));
                let request = request.map(|body| Body::new(DeadlineBody::new(body, body_timeout)));
                let response = tower::ServiceExt::oneshot(router.clone(), request);
                async move {
                    let response = response.await;
                    drop(in_flight);
                    response
                }
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(settings.header_timeout)
                .keep_alive(true);
            let mut connection = pin!(builder.serve_connection(TokioIo::new(stream), service));
            let mut stopping = false;
            loop {
                tokio::select! {
                    result = connection.as_mut() => {
                        if let Err(error) = result {
                            tracing::debug!(%remote, %error, "HTTP connection closed");
                        }
                        break;
                    }
                    changed = stopped.changed(), if !stopping => {
                        stopping = true;
                        if changed.is_ok() {
                            connection.as_mut().graceful_shutdown();
                        }
                    }
                    () = state.close.notified(), if !stopping => {
                        // Its place is taken. A request that began since
                        // it was chosen is finished first.
                        if state.in_flight.load(Ordering::SeqCst) == 0 {
                            tracing::debug!(%remote, "idle HTTP connection closed for a new one (EVENT_BUS_HTTP_MAX_CONNECTIONS)");
                            break;
                        }
                        stopping = true;
                        connection.as_mut().graceful_shutdown();
                    }
                }
            }
            open.remove(id);
            drop(slot);
        });
    }
    drop(listener);
    drop(stopped);
    let _ = stop.send(true);
    stop.closed().await;
}

/// One open connection, as the accept loop sees it.
#[derive(Default)]
struct ConnectionState {
    /// Requests in progress (0: waiting for a request's headers).
    in_flight: AtomicUsize,
    /// Chosen to be closed (it is chosen once).
    closing: AtomicBool,
    /// Wakes the connection's task to close it.
    close: Notify,
}

/// Counts a request in progress on its connection while alive.
struct InFlight(Arc<ConnectionState>);

impl InFlight {
    fn new(state: Arc<ConnectionState>) -> Self {
        state.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(state)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The open connections, oldest first.
#[derive(Default)]
struct OpenConnections {
    inner: Mutex<(u64, BTreeMap<u64, Arc<ConnectionState>>)>,
}

impl OpenConnections {
    fn lock(&self) -> std::sync::MutexGuard<'_, (u64, BTreeMap<u64, Arc<ConnectionState>>)> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn insert(&self) -> (u64, Arc<ConnectionState>) {
        let mut inner = self.lock();
        let id = inner.0;
        inner.0 += 1;
        let state = Arc::new(ConnectionState::default());
        inner.1.insert(id, Arc::clone(&state));
        (id, state)
    }

    fn remove(&self, id: u64) {
        self.lock().1.remove(&id);
    }

    /// Tells the oldest connection with no request in progress (and not
    /// already closing) to close; whether there was one.
    fn close_longest_idle(&self) -> bool {
        let inner = self.lock();
        let idle = inner.1.values().find(|state| {
            state.in_flight.load(Ordering::SeqCst) == 0 && !state.closing.load(Ordering::SeqCst)
        });
        match idle {
            Some(state) => {
                state.closing.store(true, Ordering::SeqCst);
                state.close.notify_one();
                true
            }
            None => false,
        }
    }
}

/// Errors of one connection that never became ours (reset or aborted
/// before `accept` returned): skip it.
fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

/// A request body that has not arrived in full within its time.
#[derive(Debug, thiserror::Error)]
#[error("the request body was not received within {0:?} (EVENT_BUS_HTTP_BODY_TIMEOUT)")]
pub(crate) struct BodyTimeout(pub(crate) Duration);

/// A request body with a deadline for all of it (not between frames, as
/// `tower_http`'s `TimeoutBody`: a body at one byte a second never waits
/// long between frames).
struct DeadlineBody {
    inner: Incoming,
    deadline: Pin<Box<tokio::time::Sleep>>,
    timeout: Duration,
}

impl DeadlineBody {
    fn new(inner: Incoming, timeout: Duration) -> Self {
        DeadlineBody {
            inner,
            deadline: Box::pin(tokio::time::sleep(timeout)),
            timeout,
        }
    }
}

impl hyper::body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(Box::new(BodyTimeout(this.timeout)))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::HttpServerSettings;
    use std::time::Duration;

    fn with(pairs: &[(&str, &str)]) -> Result<HttpServerSettings, super::HttpError> {
        HttpServerSettings::from_lookup(|var| {
            pairs
                .iter()
                .find(|(k, _)| *k == var)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    /// By default a connection that sends nothing, or its headers or body
    /// too slowly, is closed within a minute at most.
    #[test]
    fn defaults_close_a_slow_connection_within_a_minute() {
        let d = HttpServerSettings::default();
        assert_eq!(with(&[]).unwrap(), d);
        assert!(
            d.header_timeout + d.body_timeout <= Duration::from_secs(60),
            "{d:?}"
        );
        assert!(d.max_connections < 1024, "under the usual descriptor limit");
    }

    #[test]
    fn reads_each_variable_and_refuses_bad_values_naming_them() {
        let s = with(&[
            ("EVENT_BUS_HTTP_HEADER_TIMEOUT", "500ms"),
            ("EVENT_BUS_HTTP_BODY_TIMEOUT", "2m"),
            ("EVENT_BUS_HTTP_MAX_CONNECTIONS", "64"),
        ])
        .unwrap();
        assert_eq!(s.header_timeout, Duration::from_millis(500));
        assert_eq!(s.body_timeout, Duration::from_secs(120));
        assert_eq!(s.max_connections, 64);
        for (var, bad) in [
            ("EVENT_BUS_HTTP_HEADER_TIMEOUT", "0s"),
            ("EVENT_BUS_HTTP_BODY_TIMEOUT", "soon"),
            ("EVENT_BUS_HTTP_MAX_CONNECTIONS", "0"),
            ("EVENT_BUS_HTTP_MAX_CONNECTIONS", "lots"),
        ] {
            let e = with(&[(var, bad)]).unwrap_err().to_string();
            assert!(e.starts_with(&format!("{var}=`{bad}` is not valid")), "{e}");
        }
    }
}
