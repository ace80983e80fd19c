//! The trace context an event carries: W3C `traceparent`/`tracestate` in the detail's reserved `_trace` field, its X-Ray form, and (feature `otel`) the bridge to OpenTelemetry spans.
//!
//! A publish inside a `tracing` span that has an OpenTelemetry context
//! (through `tracing-opentelemetry`) writes that context into the event
//! (SPEC §13):
//!
//! ```json
//! {"id": "…", "type": "…", "occurred_on": "…", "attributes": "{…}",
//!  "_trace": {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
//!             "tracestate": "congo=t61rcWkgMzE"}}
//! ```
//!
//! Python's `package-events-bus` ignores the field. The context is kept on
//! the [`RawEvent`](crate::RawEvent) ([`RawEvent::trace`](crate::RawEvent::trace)),
//! so a stored, failed-over, outbox or replayed event is sent with the
//! context of its original publish. Readers are tolerant: a missing
//! `_trace` is no context, a malformed one is ignored (logged at debug),
//! never an error.
//!
//! Without the `otel` feature the context is read, kept and written as it
//! is (an event forwarded or replayed keeps it) but never made from or
//! turned into a span, and no OpenTelemetry crate is compiled.

use std::borrow::Cow;

use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

/// The longest `tracestate` kept (the W3C limit is 512 characters).
const MAX_TRACESTATE: usize = 512;

/// A W3C trace context: a valid `traceparent` and, if any, a `tracestate`.
///
/// ```
/// use events_core::trace::TraceContext;
/// let cx = TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", None).unwrap();
/// assert_eq!(cx.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
/// assert_eq!(cx.xray_header(), "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=1");
/// assert!(TraceContext::parse("00-not-a-trace", None).is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TraceContext {
    traceparent: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    tracestate: Option<String>,
}

impl TraceContext {
    /// A context from its W3C headers: `None` unless `traceparent` is
    /// `{version}-{32 hex trace id}-{16 hex parent id}-{2 hex flags}` with
    /// non-zero ids and a version other than `ff` (upper case is read as
    /// lower case). A `tracestate` that is empty, longer than 512
    /// characters or not printable ASCII is dropped.
    pub fn parse(traceparent: &str, tracestate: Option<&str>) -> Option<Self> {
        let traceparent = traceparent.trim().to_ascii_lowercase();
        let mut parts = traceparent.split('-');
        let (version, trace_id, parent_id, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
        let zero = |s: &str| s.bytes().all(|b| b == b'0');
        let valid = hex(version, 2)
            && version != "ff"
            && hex(trace_id, 32)
            && !zero(trace_id)
            && hex(parent_id, 16)
            && !zero(parent_id)
            && hex(flags, 2)
            // Version 00 has exactly four parts; later ones may add more.
            && (version != "00" || parts.next().is_none());
        if !valid {
            return None;
        }
        let tracestate = tracestate
            .map(str::trim)
            .filter(|s| {
                !s.is_empty()
                    && s.len() <= MAX_TRACESTATE
                    && s.bytes().all(|b| (0x20..0x7f).contains(&b))
            })
            .map(str::to_owned);
        // Only the four known parts are kept (and written back).
        let traceparent = format!("{version}-{trace_id}-{parent_id}-{flags}");
        Some(TraceContext {
            traceparent,
            tracestate,
        })
    }

    /// The `traceparent` header.
    pub fn traceparent(&self) -> &str {
        &self.traceparent
    }

    /// The `tracestate` header, if any.
    pub fn tracestate(&self) -> Option<&str> {
        self.tracestate.as_deref()
    }

    /// The trace id: 32 lower-case hex digits.
    pub fn trace_id(&self) -> &str {
        self.traceparent.get(3..35).unwrap_or_default()
    }

    /// The id of the span that published: 16 lower-case hex digits.
    pub fn parent_id(&self) -> &str {
        self.traceparent.get(36..52).unwrap_or_default()
    }

    /// Whether the publisher sampled the trace (flag `01`).
    pub fn sampled(&self) -> bool {
        self.traceparent
            .get(53..55)
            .and_then(|f| u8::from_str_radix(f, 16).ok())
            .is_some_and(|f| f & 1 == 1)
    }

    /// The context as an X-Ray trace header (what PutEvents' `TraceHeader`
    /// takes): `Root=1-{8 hex}-{24 hex};Parent={16 hex};Sampled={0|1}`.
    pub fn xray_header(&self) -> String {
        let id = self.trace_id();
        format!(
            "Root=1-{}-{};Parent={};Sampled={}",
            id.get(..8).unwrap_or_default(),
            id.get(8..).unwrap_or_default(),
            self.parent_id(),
            u8::from(self.sampled())
        )
    }

    /// The JSON text of the context as the store keeps it (the `_trace`
    /// object).
    pub fn to_json(&self) -> String {
        // A struct of strings always serializes; the fallback keeps this total.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads what [`to_json`](Self::to_json) wrote; `None` for anything
    /// else (logged at debug).
    pub fn from_json(json: &str) -> Option<Self> {
        serde_json::from_str::<TraceField>(json)
            .ok()
            .and_then(|f| f.0)
    }
}

/// The `_trace` field as readers take it: any JSON value; a context when it
/// is an object with a valid `traceparent`, else `None` (logged at debug).
/// Reading it never fails on its content.
#[derive(Debug, Default)]
pub(crate) struct TraceField(pub(crate) Option<TraceContext>);

impl<'de> Deserialize<'de> for TraceField {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(FieldVisitor)
    }
}

/// A string, or nothing for any other value.
struct Text<'a>(Option<Cow<'a, str>>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Some(Cow::Owned(v.to_owned()))))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Text<'de>, E> {
                Ok(Text(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Text<'de>, E> {
                Ok(Text(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Text<'de>, E> {
                Ok(Text(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Text<'de>, E> {
                Ok(Text(None))
            }
            fn visit_unit<E>(self) -> Result<Text<'de>, E> {
                Ok(Text(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Text<'de>, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Text(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Text<'de>, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Text(None))
            }
        }
        deserializer.deserialize_any(V)
    }
}

struct FieldVisitor;

impl FieldVisitor {
    fn ignored<E>(found: &str) -> Result<TraceField, E> {
        tracing::debug!(found, "`_trace` is not an object: ignored");
        Ok(TraceField(None))
    }
}

impl<'de> Visitor<'de> for FieldVisitor {
    type Value = TraceField;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_str<E>(self, _: &str) -> Result<TraceField, E> {
        Self::ignored("a string")
    }
    fn visit_bool<E>(self, _: bool) -> Result<TraceField, E> {
        Self::ignored("a boolean")
    }
    fn visit_i64<E>(self, _: i64) -> Result<TraceField, E> {
        Self::ignored("a number")
    }
    fn visit_u64<E>(self, _: u64) -> Result<TraceField, E> {
        Self::ignored("a number")
    }
    fn visit_f64<E>(self, _: f64) -> Result<TraceField, E> {
        Self::ignored("a number")
    }
    fn visit_unit<E>(self) -> Result<TraceField, E> {
        // `null`: no context, said by the sender.
        Ok(TraceField(None))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<TraceField, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Self::ignored("an array")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TraceField, A::Error> {
        let (mut traceparent, mut tracestate) = (None, None);
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            match &*key {
                "traceparent" => traceparent = map.next_value::<Text<'de>>()?.0,
                "tracestate" => tracestate = map.next_value::<Text<'de>>()?.0,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let parsed = traceparent
            .as_deref()
            .and_then(|tp| TraceContext::parse(tp, tracestate.as_deref()));
        if parsed.is_none() {
            tracing::debug!(
                traceparent = traceparent.as_deref().map(|t| t.get(..64).unwrap_or(t)),
                "`_trace` has no valid `traceparent`: ignored"
            );
        }
        Ok(TraceField(parsed))
    }
}

/// The context to send with events published in `span` (the `publish`
/// span): its OpenTelemetry context, if it has a valid one.
#[cfg(feature = "otel")]
pub(crate) fn capture(span: &tracing::Span) -> Option<TraceContext> {
    if span.is_disabled() {
        return None;
    }
    otel::from_span(span)
}

/// Without the `otel` feature no context is made.
#[cfg(not(feature = "otel"))]
#[inline(always)]
pub(crate) fn capture(_: &tracing::Span) -> Option<TraceContext> {
    None
}

/// Makes `span` (a consumer's `process` span, not yet entered) a child of
/// the span that published the event, when the event carries its context.
#[cfg(feature = "otel")]
pub(crate) fn adopt(span: &tracing::Span, trace: Option<&TraceContext>) {
    if let Some(trace) = trace {
        otel::set_parent(span, trace);
    }
}

/// Without the `otel` feature spans keep their local parents.
#[cfg(not(feature = "otel"))]
#[inline(always)]
pub(crate) fn adopt(_: &tracing::Span, _: Option<&TraceContext>) {}

#[cfg(feature = "otel")]
#[cfg_attr(docsrs, doc(cfg(feature = "otel")))]
pub use otel::{from_span, link, set_parent, set_root};

/// The bridge to OpenTelemetry (feature `otel`).
#[cfg(feature = "otel")]
mod otel {
    use opentelemetry::trace::{
        SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState,
    };
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    use super::TraceContext;

    impl TraceContext {
        /// The context of an OpenTelemetry span (`None` when it is not
        /// valid).
        pub fn from_span_context(cx: &SpanContext) -> Option<Self> {
            if !cx.is_valid() {
                return None;
            }
            let traceparent = format!(
                "00-{:032x}-{:016x}-{:02x}",
                cx.trace_id(),
                cx.span_id(),
                cx.trace_flags() & TraceFlags::SAMPLED
            );
            let state = cx.trace_state().header();
            TraceContext::parse(&traceparent, Some(&state))
        }

        /// The context as a remote OpenTelemetry span context.
        pub fn span_context(&self) -> SpanContext {
            let trace_id = TraceId::from_hex(self.trace_id()).unwrap_or(TraceId::INVALID);
            let span_id = SpanId::from_hex(self.parent_id()).unwrap_or(SpanId::INVALID);
            let flags = if self.sampled() {
                TraceFlags::SAMPLED
            } else {
                TraceFlags::default()
            };
            let state = self
                .tracestate()
                .and_then(|s| s.parse::<TraceState>().ok())
                .unwrap_or_default();
            SpanContext::new(trace_id, span_id, flags, true, state)
        }
    }

    /// The OpenTelemetry context of a `tracing` span, when it has a valid
    /// one (a `tracing-opentelemetry` layer is installed and the span is
    /// enabled).
    pub fn from_span(span: &tracing::Span) -> Option<TraceContext> {
        let cx = span.context();
        TraceContext::from_span_context(&cx.span().span_context().clone())
    }

    /// Makes `span` a child of the remote span `trace` names. Call it
    /// before the span is first entered.
    pub fn set_parent(span: &tracing::Span, trace: &TraceContext) {
        let parent = opentelemetry::Context::new().with_remote_span_context(trace.span_context());
        if let Err(error) = span.set_parent(parent) {
            tracing::debug!(%error, "trace context not applied to the span");
        }
    }

    /// Links `span` to the remote span `trace` names (a batch's span to each
    /// of its events' publishers).
    pub fn link(span: &tracing::Span, trace: &TraceContext) {
        span.add_link(trace.span_context());
    }

    /// Makes `span` the root of a trace of its own, whatever span is
    /// current when it is made (its `tracing` parent stays, for the log
    /// lines): a long-running consumer's batch, which would otherwise be one
    /// more child of the run's span, all of them in one trace as long as
    /// the run. Call it before the span is first entered.
    pub fn set_root(span: &tracing::Span) {
        if let Err(error) = span.set_parent(opentelemetry::Context::new()) {
            tracing::debug!(%error, "span not made a trace root");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn field(json: &str) -> Option<TraceContext> {
        serde_json::from_str::<TraceField>(json).unwrap().0
    }

    #[test]
    fn a_valid_traceparent_parses_and_its_parts_read_back() {
        let cx = TraceContext::parse(TP, Some("congo=t61rcWkgMzE")).unwrap();
        assert_eq!(cx.traceparent(), TP);
        assert_eq!(cx.tracestate(), Some("congo=t61rcWkgMzE"));
        assert_eq!(cx.parent_id(), "00f067aa0ba902b7");
        assert!(cx.sampled());
        let unsampled = TraceContext::parse(&TP.replace("-01", "-00"), None).unwrap();
        assert!(!unsampled.sampled());
        assert!(unsampled.xray_header().ends_with(";Sampled=0"));
        assert_eq!(TraceContext::from_json(&cx.to_json()), Some(cx));
    }

    #[test]
    fn malformed_traceparents_are_refused() {
        for bad in [
            "",
            "00",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473x-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-701",
        ] {
            assert_eq!(TraceContext::parse(bad, None), None, "{bad:?}");
        }
        let long = "a=".to_owned() + &"b".repeat(600);
        assert_eq!(
            TraceContext::parse(TP, Some(&long)).unwrap().tracestate(),
            None
        );
    }

    #[test]
    fn the_field_reads_any_json_and_keeps_only_a_valid_context() {
        assert_eq!(
            field(&format!(
                r#"{{"traceparent":"{TP}","x":[1,{{}}],"tracestate":"a=b"}}"#
            )),
            TraceContext::parse(TP, Some("a=b"))
        );
        for ignored in [
            "null",
            "1",
            "true",
            r#""00-…""#,
            "[1,2]",
            "{}",
            r#"{"traceparent":7}"#,
            r#"{"traceparent":"nope"}"#,
            r#"{"traceparent":{"a":1},"tracestate":[]}"#,
        ] {
            assert_eq!(field(ignored), None, "{ignored}");
        }
    }
}
