//! The HTTP adapter (feature `http`): an `axum` router serving
//! `POST /events-bus/dispatch`, the endpoint of an EventBridge API
//! destination, running the same handlers.
//!
//! | answer | when |
//! | --- | --- |
//! | 200 | the handlers succeeded, the event has no handler here, or it is a duplicate |
//! | 400 | the body is not an event (the reason, naming the field) |
//! | 401 | the credential is missing or wrong: nothing is decoded or run |
//! | 413 | the body is larger than the limit (default 256 KiB, EventBridge's event size) |
//! | 500 | a handler failed (EventBridge retries, then its DLQ) |
//!
//! The endpoint is a door into the handlers, so it checks who calls: the
//! credential the EventBridge connection sends (an API key header, basic
//! auth or a bearer token), compared in constant time. Running without one
//! needs [`DispatchRouter::allow_unauthenticated`], and logs a warning when
//! the router is built.
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
//! // axum::serve(tokio::net::TcpListener::bind("0.0.0.0:8080").await?, router).await?;
//! # drop(router);
//! # Ok(())
//! # }
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

use crate::consumer::{Processed, Processor};

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

/// Why the router could not be built.
#[derive(Debug, thiserror::Error)]
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
    // Past the limit while streaming (no or a false Content-Length), or the
    // client went away: either way nothing is dispatched.
    let Ok(bytes) = axum::body::to_bytes(body, limit).await else {
        return too_large();
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
    use super::base64;

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
