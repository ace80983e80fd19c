//! The HTTP adapter (feature `http`): an `axum` router serving
//! `POST /events-bus/dispatch`, the endpoint of an EventBridge API
//! destination, running the same handlers.
//!
//! | answer | when |
//! | --- | --- |
//! | 200 | the handlers succeeded, the event has no handler here, or it is a duplicate |
//! | 400 | the body is not an event (the reason, naming the field) |
//! | 401 | the credential is missing or wrong: nothing is decoded or run |
//! | 408 | the body did not arrive within the body timeout ([`serve`]) |
//! | 413 | the body is larger than the limit (default 256 KiB, EventBridge's event size) |
//! | 500 | a handler failed or ran past the handler timeout (EventBridge retries, then its DLQ) |
//!
//! The endpoint is a door into the handlers, so it checks who calls: the
//! credential the EventBridge connection sends (an API key header, basic
//! auth or a bearer token), compared in constant time. Running without one
//! needs [`DispatchRouter::allow_unauthenticated`], and logs a warning when
//! the router is built.
//!
//! In a service, [`DispatchRouter::from_env`] reads the credential and the
//! body limit from `EVENT_BUS_HTTP_*` variables (see its table), e.g.
//! `EVENT_BUS_HTTP_API_KEY` (and `EVENT_BUS_HTTP_API_KEY_HEADER`, default
//! `x-events-key`); a builder, as here, sets them in code:
//!
//! ```
//! use events_core::EventBus;
//! use events_eventbridge::http::DispatchRouter;
//! use events_eventbridge::Processor;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let bus = EventBus::builder().without_store().build()?;
//! let router: axum::Router = DispatchRouter::new(Processor::new(bus))
//!     .api_key("x-events-key", "s3cret")
//!     .body_limit(256 * 1024)
//!     .build()?;
//! # drop(router);
//! # Ok(())
//! # }
//! ```
//!
//! # Serving it
//!
//! The endpoint faces the network, so serve it with [`serve`] (or
//! [`serve_with_shutdown`]) rather than `axum::serve`, which has no
//! timeout and no connection bound: a thousand idle connections would take
//! the process down without a credential. [`serve`] closes a connection
//! that sends nothing, or its headers too slowly, after the header timeout
//! (10 s; also the idle keep-alive timeout), answers 408 to a body slower
//! than the body timeout (30 s), and keeps at most 512 connections open,
//! the others waiting in the kernel's accept queue; [`HttpServerSettings`]
//! changes them, [`HttpServerSettings::from_env`] from `EVENT_BUS_HTTP_*`.
//!
//! ```no_run
//! # use events_core::EventBus;
//! # use events_eventbridge::http::{serve, DispatchRouter, HttpServerSettings};
//! # use events_eventbridge::Processor;
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! # let bus = EventBus::builder().without_store().build()?;
//! let router = DispatchRouter::from_env(Processor::new(bus))?.build()?;
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:8080").await?;
//! serve(listener, router, HttpServerSettings::from_env()?).await;
//! # Ok(()) }
//! ```

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::header::{HeaderName, AUTHORIZATION, CONTENT_LENGTH, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;
use subtle::ConstantTimeEq;

use events_core::ConfigError;

use crate::consumer::{Processed, Processor};

mod serve;

pub use serve::{serve, serve_with_shutdown, HttpServerSettings};

/// The path EventBridge API destinations call.
pub const DISPATCH_PATH: &str = "/events-bus/dispatch";

/// The default body limit: EventBridge's default event size, 256 KiB.
pub const DEFAULT_BODY_LIMIT: usize = 256 * 1024;

/// The credential an EventBridge connection sends.
#[derive(Clone)]
pub enum Credential {
    /// An API key in a header (the connection's `API_KEY` authorization).
    ApiKey {
        /// The header's name.
        header: HeaderName,
        /// Its value.
        value: String,
    },
    /// HTTP basic authentication (`BASIC`).
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: String,
    },
    /// A bearer token in `Authorization` (as an `API_KEY` connection with
    /// header `Authorization` and value `Bearer ...` sends it).
    Bearer(String),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        match self {
            Credential::ApiKey { header, .. } => write!(f, "ApiKey({header})"),
            Credential::Basic { username, .. } => write!(f, "Basic({username})"),
            Credential::Bearer(_) => f.write_str("Bearer"),
        }
    }
}

impl Credential {
    /// The header and the exact value expected in it.
    fn expected(&self) -> (HeaderName, Vec<u8>) {
        match self {
            Credential::ApiKey { header, value } => (header.clone(), value.as_bytes().to_vec()),
            Credential::Basic { username, password } => (
                AUTHORIZATION,
                format!(
                    "Basic {}",
                    base64(format!("{username}:{password}").as_bytes())
                )
                .into_bytes(),
            ),
            Credential::Bearer(token) => (AUTHORIZATION, format!("Bearer {token}").into_bytes()),
        }
    }
}

/// Why the router could not be built. Its `Debug` is its message (and
/// causes), so `main() -> Result<(), Box<dyn Error>>` shows the sentence.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// No credential, and no explicit opt-in to run without one.
    #[error(
        "the dispatch endpoint needs a credential (api_key, basic or bearer: what the EventBridge connection sends); \
         to run it open, call `allow_unauthenticated()`"
    )]
    NoCredential,
    /// The API key's header name is not a valid HTTP header name.
    #[error("`{0}` is not a valid HTTP header name for the API key")]
    BadHeader(String),
    /// An empty secret would accept anyone who sends an empty header.
    #[error("the {0} credential is empty")]
    EmptyCredential(&'static str),
    /// An `EVENT_BUS_HTTP_*` variable cannot be used (never shows a secret).
    #[error(transparent)]
    Config(#[from] ConfigError),
}

impl std::fmt::Debug for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        events_core::error::write_chain(self, f)
    }
}

/// The variables [`DispatchRouter::from_env`] reads.
pub mod env {
    /// The API key the connection sends (its `API_KEY` authorization).
    pub const API_KEY: &str = "EVENT_BUS_HTTP_API_KEY";
    /// The header the API key comes in (default [`DEFAULT_API_KEY_HEADER`]).
    pub const API_KEY_HEADER: &str = "EVENT_BUS_HTTP_API_KEY_HEADER";
    /// The user name of basic authentication (the connection's `BASIC`).
    pub const BASIC_USERNAME: &str = "EVENT_BUS_HTTP_BASIC_USERNAME";
    /// The password of basic authentication.
    pub const BASIC_PASSWORD: &str = "EVENT_BUS_HTTP_BASIC_PASSWORD";
    /// A bearer token (`Authorization: Bearer ...`).
    pub const BEARER_TOKEN: &str = "EVENT_BUS_HTTP_BEARER_TOKEN";
    /// `true` to serve without any credential (logged as a warning).
    pub const ALLOW_UNAUTHENTICATED: &str = "EVENT_BUS_HTTP_ALLOW_UNAUTHENTICATED";
    /// The body limit in bytes (default [`DEFAULT_BODY_LIMIT`](super::DEFAULT_BODY_LIMIT)).
    pub const BODY_LIMIT: &str = "EVENT_BUS_HTTP_BODY_LIMIT";
    /// The API key header when [`API_KEY_HEADER`] is unset.
    pub const DEFAULT_API_KEY_HEADER: &str = "x-events-key";
    /// The largest body limit accepted: 16 MiB.
    pub const MAX_BODY_LIMIT: usize = 16 * 1024 * 1024;
    /// [`serve`](super::serve): the time to send a request's headers (also
    /// the idle keep-alive timeout).
    pub const HEADER_TIMEOUT: &str = "EVENT_BUS_HTTP_HEADER_TIMEOUT";
    /// [`serve`](super::serve): the time to send a request's body.
    pub const BODY_TIMEOUT: &str = "EVENT_BUS_HTTP_BODY_TIMEOUT";
    /// [`serve`](super::serve): the connections open at once.
    pub const MAX_CONNECTIONS: &str = "EVENT_BUS_HTTP_MAX_CONNECTIONS";
}

fn config_error(var: &'static str, value: impl Into<String>, expected: &'static str) -> HttpError {
    HttpError::Config(ConfigError {
        var,
        value: value.into(),
        expected,
    })
}

/// Builds the router of `POST /events-bus/dispatch`.
#[derive(Debug)]
pub struct DispatchRouter {
    processor: Processor,
    credential: Option<Credential>,
    open: bool,
    body_limit: usize,
    bad_header: Option<String>,
}

struct Shared {
    processor: Processor,
    expected: Option<(HeaderName, Vec<u8>)>,
    basic: bool,
    body_limit: usize,
}

impl DispatchRouter {
    /// A router running `processor`'s handlers; give it a credential.
    pub fn new(processor: Processor) -> Self {
        DispatchRouter {
            processor,
            credential: None,
            open: false,
            body_limit: DEFAULT_BODY_LIMIT,
            bad_header: None,
        }
    }

    /// The twelve-factor path: a router of `processor`'s handlers with the
    /// credential and body limit of the environment. A variable set to an
    /// empty (or blank) value counts as unset.
    ///
    /// | variable | meaning | default |
    /// | --- | --- | --- |
    /// | `EVENT_BUS_HTTP_API_KEY` | the API key the connection sends | |
    /// | `EVENT_BUS_HTTP_API_KEY_HEADER` | the header it comes in | `x-events-key` |
    /// | `EVENT_BUS_HTTP_BASIC_USERNAME`, `EVENT_BUS_HTTP_BASIC_PASSWORD` | basic authentication (both) | |
    /// | `EVENT_BUS_HTTP_BEARER_TOKEN` | `Authorization: Bearer {token}` | |
    /// | `EVENT_BUS_HTTP_ALLOW_UNAUTHENTICATED` | `true`: serve without a credential (a warning at start-up) | `false` |
    /// | `EVENT_BUS_HTTP_BODY_LIMIT` | bytes, 1 to 16777216 (413 past it) | `262144` |
    ///
    /// Exactly one credential (API key, basic or bearer), or none with
    /// `EVENT_BUS_HTTP_ALLOW_UNAUTHENTICATED=true`; anything else is an
    /// [`HttpError::Config`] naming the variable, the value (never a
    /// secret's) and what is accepted, or [`HttpError::NoCredential`] when
    /// nothing is set. Call [`build`](Self::build) on the result (it may
    /// still be adjusted first).
    ///
    /// # Errors
    ///
    /// [`HttpError::Config`] for a variable that cannot be used (or two
    /// credentials), [`HttpError::NoCredential`] for none.
    pub fn from_env(processor: Processor) -> Result<Self, HttpError> {
        Self::from_lookup(processor, |var| std::env::var(var).ok())
    }

    /// As [`from_env`](Self::from_env), reading the variables through
    /// `lookup` (a map in tests, a secrets manager...).
    ///
    /// ```
    /// use events_core::EventBus;
    /// use events_eventbridge::http::DispatchRouter;
    /// use events_eventbridge::Processor;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let bus = EventBus::builder().without_store().build()?;
    /// let env = |var: &str| match var {
    ///     "EVENT_BUS_HTTP_BEARER_TOKEN" => Some("s3cret".to_owned()),
    ///     "EVENT_BUS_HTTP_BODY_LIMIT" => Some("64KB".to_owned()),
    ///     _ => None,
    /// };
    /// let err = DispatchRouter::from_lookup(Processor::new(bus), env).unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     "EVENT_BUS_HTTP_BODY_LIMIT=`64KB` is not valid: expected a number of bytes from 1 to 16777216 (16 MiB), e.g. `262144`"
    /// );
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`from_env`](Self::from_env).
    pub fn from_lookup(
        processor: Processor,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, HttpError> {
        let get = |var: &str| lookup(var).filter(|v| !v.trim().is_empty());
        let mut router = DispatchRouter::new(processor);
        if let Some(v) = get(env::BODY_LIMIT) {
            router.body_limit = v
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=env::MAX_BODY_LIMIT).contains(n))
                .ok_or_else(|| {
                    config_error(
                        env::BODY_LIMIT,
                        v,
                        "a number of bytes from 1 to 16777216 (16 MiB), e.g. `262144`",
                    )
                })?;
        }
        let allow = get(env::ALLOW_UNAUTHENTICATED);
        let open = match &allow {
            None => false,
            Some(v) => events_core::config::parse_bool(env::ALLOW_UNAUTHENTICATED, v)?,
        };
        // Which credentials are set, by variable name: values are secrets.
        let header = get(env::API_KEY_HEADER);
        let key = get(env::API_KEY);
        let username = get(env::BASIC_USERNAME);
        let password = get(env::BASIC_PASSWORD);
        let token = get(env::BEARER_TOKEN);
        if let (Some(header), None) = (&header, &key) {
            return Err(config_error(
                env::API_KEY_HEADER,
                header.as_str(),
                "EVENT_BUS_HTTP_API_KEY set too (the key this header carries)",
            ));
        }
        match (&username, &password) {
            (Some(username), None) => {
                return Err(config_error(
                    env::BASIC_USERNAME,
                    username.as_str(),
                    "EVENT_BUS_HTTP_BASIC_PASSWORD set too (basic authentication needs both)",
                ))
            }
            (None, Some(_)) => {
                return Err(config_error(
                    env::BASIC_PASSWORD,
                    "(secret, not shown)",
                    "EVENT_BUS_HTTP_BASIC_USERNAME set too (basic authentication needs both)",
                ))
            }
            _ => {}
        }
        let set: Vec<&str> = [
            key.is_some().then_some(env::API_KEY),
            username
                .is_some()
                .then_some("EVENT_BUS_HTTP_BASIC_USERNAME/PASSWORD"),
            token.is_some().then_some(env::BEARER_TOKEN),
        ]
        .into_iter()
        .flatten()
        .collect();
        if set.len() > 1 {
            return Err(config_error(
                "EVENT_BUS_HTTP_* credentials",
                set.join(", "),
                "one credential: an API key, basic authentication or a bearer token (what the EventBridge connection sends)",
            ));
        }
        if open && !set.is_empty() {
            return Err(config_error(
                env::ALLOW_UNAUTHENTICATED,
                allow.unwrap_or_default(),
                "`false` or unset when a credential is set (EVENT_BUS_HTTP_API_KEY, _BASIC_*, _BEARER_TOKEN): \
                 a credential is checked, so the endpoint is not open",
            ));
        }
        if let Some(key) = key {
            let header = header.unwrap_or_else(|| env::DEFAULT_API_KEY_HEADER.to_owned());
            let name = HeaderName::try_from(header.trim().to_ascii_lowercase()).map_err(|_| {
                config_error(
                    env::API_KEY_HEADER,
                    header.as_str(),
                    "an HTTP header name, e.g. `x-events-key`",
                )
            })?;
            router.credential = Some(Credential::ApiKey {
                header: name,
                value: key.trim().to_owned(),
            });
        } else if let (Some(username), Some(password)) = (username, password) {
            router.credential = Some(Credential::Basic { username, password });
        } else if let Some(token) = token {
            router.credential = Some(Credential::Bearer(token.trim().to_owned()));
        } else if open {
            router.open = true;
        }
        Ok(router)
    }

    /// Requires header `header` with value `value`. A header name that is
    /// not valid HTTP makes [`build`](Self::build) fail.
    pub fn api_key(mut self, header: impl AsRef<str>, value: impl Into<String>) -> Self {
        match HeaderName::try_from(header.as_ref().to_ascii_lowercase()) {
            Ok(header) => {
                self.credential = Some(Credential::ApiKey {
                    header,
                    value: value.into(),
                })
            }
            Err(_) => self.bad_header = Some(header.as_ref().to_owned()),
        }
        self
    }

    /// Requires basic authentication with these credentials.
    pub fn basic(mut self, username: impl Into<String>, password: impl Into<String>) -> Self {
        self.credential = Some(Credential::Basic {
            username: username.into(),
            password: password.into(),
        });
        self
    }

    /// Requires `Authorization: Bearer {token}`.
    pub fn bearer(mut self, token: impl Into<String>) -> Self {
        self.credential = Some(Credential::Bearer(token.into()));
        self
    }

    /// Requires `credential`.
    pub fn credential(mut self, credential: Credential) -> Self {
        self.credential = Some(credential);
        self
    }

    /// Serves without any credential check: anyone who reaches the port
    /// runs the handlers. A warning is logged when the router is built.
    pub fn allow_unauthenticated(mut self) -> Self {
        self.open = true;
        self
    }

    /// Refuses bodies larger than `bytes` with 413.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// The router.
    ///
    /// # Errors
    ///
    /// [`HttpError::BadHeader`] for an API key header that is not a header
    /// name, [`HttpError::EmptyCredential`] for an empty secret,
    /// [`HttpError::NoCredential`] for no credential without
    /// [`allow_unauthenticated`](Self::allow_unauthenticated).
    pub fn build(self) -> Result<Router, HttpError> {
        if let Some(header) = self.bad_header {
            return Err(HttpError::BadHeader(header));
        }
        let expected = match &self.credential {
            Some(c) => {
                let empty = match c {
                    Credential::ApiKey { value, .. } => value.is_empty().then_some("API key"),
                    Credential::Basic { password, .. } => password.is_empty().then_some("basic"),
                    Credential::Bearer(t) => t.is_empty().then_some("bearer"),
                };
                if let Some(kind) = empty {
                    return Err(HttpError::EmptyCredential(kind));
                }
                Some(c.expected())
            }
            None if self.open => {
                tracing::warn!(
                    path = DISPATCH_PATH,
                    "the dispatch endpoint runs WITHOUT a credential check: anyone who can reach it runs the handlers"
                );
                None
            }
            None => return Err(HttpError::NoCredential),
        };
        let shared = Arc::new(Shared {
            basic: matches!(self.credential, Some(Credential::Basic { .. })),
            processor: self.processor,
            expected,
            body_limit: self.body_limit,
        });
        Ok(Router::new()
            .route(DISPATCH_PATH, post(dispatch))
            .with_state(shared))
    }
}

fn answer(status: StatusCode, body: serde_json::Value) -> Response {
    (status, Json(body)).into_response()
}

async fn dispatch(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Body) -> Response {
    if let Some((header, value)) = &shared.expected {
        let given = headers
            .get(header)
            .map(HeaderValue::as_bytes)
            .unwrap_or_default();
        if !bool::from(given.ct_eq(value)) {
            tracing::warn!(credential = %header, present = headers.contains_key(header), "dispatch refused: missing or wrong credential");
            let mut response = answer(
                StatusCode::UNAUTHORIZED,
                json!({"error": "missing or wrong credential"}),
            );
            if shared.basic {
                response.headers_mut().insert(
                    WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"events-bus\""),
                );
            }
            return response;
        }
    }
    let limit = shared.body_limit;
    let too_large = || {
        answer(
            StatusCode::PAYLOAD_TOO_LARGE,
            json!({"error": format!("the body is larger than {limit} bytes")}),
        )
    };
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return too_large();
    }
    // Past the limit while streaming (no or a false Content-Length), too
    // slow (`serve`'s body timeout), or the client went away: either way
    // nothing is dispatched.
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => bytes,
        Err(e) => {
            return match timed_out(&e) {
                Some(timeout) => {
                    tracing::warn!(
                        ?timeout,
                        "dispatch refused: the body was too slow to arrive"
                    );
                    answer(
                        StatusCode::REQUEST_TIMEOUT,
                        json!({"error": format!("the body was not received within {timeout:?}")}),
                    )
                }
                None => too_large(),
            }
        }
    };
    let Ok(text) = std::str::from_utf8(&bytes) else {
        return answer(
            StatusCode::BAD_REQUEST,
            json!({"status": "undecodable", "error": "the body is not UTF-8 text"}),
        );
    };
    match shared.processor.process(text).await {
        Processed::Handled {
            name,
            id,
            ran,
            skipped,
        } => answer(
            StatusCode::OK,
            json!({"status": "handled", "event": name, "id": id, "ran": ran, "skipped": skipped}),
        ),
        Processed::Duplicate { name, id } => answer(
            StatusCode::OK,
            json!({"status": "duplicate", "event": name, "id": id}),
        ),
        Processed::Unrouted { name, id } => answer(
            StatusCode::OK,
            json!({"status": "unrouted", "event": name, "id": id}),
        ),
        Processed::Undecodable { reason } => answer(
            StatusCode::BAD_REQUEST,
            json!({"status": "undecodable", "error": reason}),
        ),
        Processed::Failed { name, id, failures } => {
            // Handler names only: their errors are in the service's logs.
            let handlers: Vec<&str> = failures.iter().map(|(h, _)| h.as_str()).collect();
            answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"status": "failed", "event": name, "id": id, "failed": handlers}),
            )
        }
    }
}

/// The body timeout, if that is what `error` (reading a body) comes to.
fn timed_out(error: &(dyn std::error::Error + 'static)) -> Option<std::time::Duration> {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(serve::BodyTimeout(timeout)) = e.downcast_ref() {
            return Some(*timeout);
        }
        next = e.source();
    }
    None
}

/// Standard base64 with padding (RFC 4648), for the basic credential.
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{base64, HttpError};

    /// `main() -> Result<(), Box<dyn Error>>` prints the `Debug`: the
    /// sentence, not `NoCredential`.
    #[test]
    fn debug_is_the_message() {
        let err = HttpError::NoCredential;
        assert_eq!(format!("{err:?}"), err.to_string());
        assert!(
            format!("{err:?}").starts_with("the dispatch endpoint needs a credential"),
            "{err:?}"
        );
        let boxed: Box<dyn std::error::Error> = Box::new(HttpError::EmptyCredential("bearer"));
        assert_eq!(format!("{boxed:?}"), "the bearer credential is empty");
    }

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
            ("Aladdin:open sesame", "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }
}
