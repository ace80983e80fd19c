//! The wire format shared with Python's `package-events-bus` (SPEC §4).
//!
//! # The entry
//!
//! A PutEvents entry carries `Source`, `DetailType` (the event name) and a
//! `Detail` JSON object:
//!
//! ```json
//! {"id": "…", "type": "testclean.api.1.event.company.created",
//!  "occurred_on": "2026-11-26T10:15:30.123456+00:00",
//!  "attributes": "{\"company_name\":\"Acme\"}"}
//! ```
//!
//! # Reading
//!
//! `attributes` is a *string* holding JSON, as the Python package writes it.
//! Readers are lenient: `attributes` may also be an object, `occurred_on` may
//! end in `Z`, carry any offset, or be naive (taken as UTC), with or without
//! fractions, and ids may be in any string form.
//!
//! ```
//! use events_core::{wire, DomainEvent, Event, RawEvent};
//! # #[derive(DomainEvent, Debug, Clone, PartialEq)]
//! # #[event(company = "testclean", service = "api", version = 1, resource = "company", action = "created")]
//! # struct CompanyCreated { company_name: String }
//!
//! let event = Event::new(CompanyCreated { company_name: "Acme".into() });
//! let raw = RawEvent::from_event(&event).unwrap();
//! let entry = wire::entry(&raw, "testclean.api");
//! assert_eq!(entry.detail_type, "testclean.api.1.event.company.created");
//!
//! let back = wire::decode_detail(&entry.detail).unwrap().decode::<CompanyCreated>().unwrap();
//! assert_eq!(back, event);
//! ```

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::attributes::{check_object, parse_object};

use std::borrow::Cow;

use crate::envelope::{Event, EventId, RawEvent};
use crate::error::DecodeError;
use crate::event::DomainEvent;
use crate::trace::{TraceContext, TraceField};

/// The parts of one PutEvents request entry (without the bus name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// `Source`: who publishes, e.g. `testclean.api`.
    pub source: String,
    /// `DetailType`: the full event name.
    pub detail_type: String,
    /// `Detail`: the JSON text of the detail object.
    pub detail: String,
    /// `TraceHeader`: the event's trace context as an X-Ray header
    /// (SPEC §13), when it has one. Not counted in [`Entry::size`], as
    /// EventBridge does not count it.
    pub trace_header: Option<String>,
}

impl Entry {
    /// The entry's size as EventBridge counts it against its request limit:
    /// UTF-8 bytes of `Source`, `DetailType` and `Detail` (no `Time`, no
    /// `Resources` are sent).
    pub fn size(&self) -> usize {
        self.source.len() + self.detail_type.len() + self.detail.len()
    }
}

#[derive(Serialize)]
struct DetailOut<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    occurred_on: String,
    attributes: &'a str,
    /// The trace context (SPEC §13), only when there is one.
    #[serde(rename = "_trace", skip_serializing_if = "Option::is_none")]
    trace: Option<&'a TraceContext>,
}

/// Formats a time as the wire writes it: RFC 3339, microseconds, `+00:00`.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// let t = Utc.with_ymd_and_hms(2026, 11, 26, 10, 15, 30).unwrap();
/// assert_eq!(events_core::wire::format_time(t), "2026-11-26T10:15:30.000000+00:00");
/// ```
pub fn format_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Micros, false)
}

/// Parses a time as readers accept it (see the module docs).
///
/// Times whose UTC instant falls outside years 0001–9999 are refused: the
/// wire writes four-digit years (as RFC 3339 and Python's `datetime` need),
/// so such a time could not be written back. A bad value is quoted by a
/// bounded prefix, however long it is.
///
/// ```
/// use events_core::wire::parse_time;
/// assert!(parse_time("2026-11-26T10:15:30Z").is_ok());
/// let err = parse_time("9999-12-31T23:59:59-01:00").unwrap_err();
/// assert!(err.contains("outside"), "{err}");
/// ```
///
/// # Errors
///
/// A message saying why when `text` is not a time of the accepted forms, or is
/// one outside the range the wire format and Python's `datetime` hold.
pub fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    if let Some(time) = parse_written_time(text) {
        return Ok(time);
    }
    let parsed = DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
                .iter()
                .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
                .map(|t| t.and_utc())
        });
    let quoted = || {
        const MAX: usize = 64;
        if text.len() <= MAX {
            return text.to_owned();
        }
        let mut end = MAX;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}… ({} bytes)", &text[..end], text.len())
    };
    match parsed {
        Some(t) if (1..=9999).contains(&chrono::Datelike::year(&t)) => Ok(t),
        Some(_) => Err(format!(
            "the time `{}` is outside 0001-01-01T00:00:00Z ..= 9999-12-31T23:59:59.999999Z (UTC), \
             the range the wire format and Python's datetime can hold",
            quoted()
        )),
        None => Err(format!(
            "expected an ISO 8601 time such as `2026-11-26T10:15:30.123456+00:00`, found `{}`",
            quoted()
        )),
    }
}

/// The one form the wire writes (`2026-11-26T10:15:30.123456+00:00`,
/// [`format_time`]), read without the general parser; `None` for anything
/// else (another form, or a date or time that does not exist), which
/// [`parse_time`] then reads, or refuses with its reason.
fn parse_written_time(text: &str) -> Option<DateTime<Utc>> {
    let b = text.as_bytes();
    if b.len() != 32
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'.'
        || &b[26..] != b"+00:00"
    {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        b.get(range)?.iter().try_fold(0u32, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    let year = i32::try_from(number(0..4)?).ok().filter(|y| *y >= 1)?;
    let second = number(17..19)?;
    if second > 59 {
        // A leap second: left to the general parser.
        return None;
    }
    chrono::NaiveDate::from_ymd_opt(year, number(5..7)?, number(8..10)?)?
        .and_hms_micro_opt(number(11..13)?, number(14..16)?, second, number(20..26)?)
        .map(|t| t.and_utc())
}

/// The `Detail` JSON text of an event.
pub fn encode_detail(event: &RawEvent) -> String {
    let out = DetailOut {
        id: event.id.as_str(),
        kind: &event.name,
        occurred_on: format_time(event.occurred_on),
        attributes: &event.attributes,
        trace: event.trace.as_ref(),
    };
    // A struct of strings always serializes; the fallback keeps this total.
    serde_json::to_string(&out).unwrap_or_default()
}

/// The PutEvents `Source` of an event: the configured one
/// (`EVENT_BUS_SOURCE`), else `{company}.{service}` of the event's name.
///
/// ```
/// use events_core::{wire, RawEvent};
/// let raw = RawEvent {
///     id: "e1".into(),
///     name: "testclean.api.1.event.company.created".into(),
///     occurred_on: chrono::Utc::now(),
///     attributes: "{}".into(),
///     trace: None,
/// };
/// assert_eq!(wire::source_of(&raw, None), "testclean.api");
/// assert_eq!(wire::source_of(&raw, Some("billing.worker")), "billing.worker");
/// ```
pub fn source_of(event: &RawEvent, configured: Option<&str>) -> String {
    if let Some(source) = configured {
        return source.to_owned();
    }
    let mut parts = event.name.splitn(3, '.');
    match (parts.next(), parts.next()) {
        (Some(company), Some(service)) => format!("{company}.{service}"),
        _ => event.name.clone(),
    }
}

/// The PutEvents entry parts of an event, published by `source`.
pub fn entry(event: &RawEvent, source: &str) -> Entry {
    Entry {
        source: source.to_owned(),
        detail_type: event.name.clone(),
        detail: encode_detail(event),
        trace_header: event.trace.as_ref().map(TraceContext::xray_header),
    }
}

/// Decodes the JSON text of a `detail` object.
///
/// # Errors
///
/// A [`DecodeError`] naming the field at fault (`id`, `type`, `occurred_on`,
/// `attributes`) when `json` is not a detail object.
pub fn decode_detail(json: &str) -> Result<RawEvent, DecodeError> {
    decode_detail_in(json, None)
}

/// The fields of a `detail`, read in one pass without a JSON tree; each
/// keeps what kind of value it was, so errors can say what was found.
#[derive(Deserialize)]
struct DetailFields<'a> {
    #[serde(borrow, default, deserialize_with = "present")]
    id: Option<Json<'a>>,
    #[serde(rename = "type", borrow, default, deserialize_with = "present")]
    kind: Option<Json<'a>>,
    #[serde(borrow, default, deserialize_with = "present")]
    occurred_on: Option<Json<'a>>,
    #[serde(borrow, default, deserialize_with = "present")]
    attributes: Option<Json<'a>>,
    /// The reserved trace field: any value, never an error.
    #[serde(rename = "_trace", default)]
    trace: TraceField,
}

/// One JSON value as the decoders need it: a string (borrowed when it has
/// no escapes), an object (as compact JSON text), or the kind of anything
/// else.
enum Json<'a> {
    Str(Cow<'a, str>),
    Object(String),
    Other(&'static str),
}

impl<'de> Deserialize<'de> for Json<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Json<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Json<'de>, E> {
                Ok(Json::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Json<'de>, E> {
                Ok(Json::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Json<'de>, E> {
                Ok(Json::Str(Cow::Owned(v)))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Json<'de>, A::Error> {
                let value = Value::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(Json::Object(value.to_string()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Json<'de>, A::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(Json::Other("an array"))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Json<'de>, E> {
                Ok(Json::Other("a boolean"))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Json<'de>, E> {
                Ok(Json::Other("a number"))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Json<'de>, E> {
                Ok(Json::Other("a number"))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Json<'de>, E> {
                Ok(Json::Other("a number"))
            }
            fn visit_unit<E>(self) -> Result<Json<'de>, E> {
                Ok(Json::Other("null"))
            }
        }
        deserializer.deserialize_any(V)
    }
}

impl<'a> Json<'a> {
    /// The string, or the kind of value found instead.
    fn string(self) -> Result<Cow<'a, str>, &'static str> {
        match self {
            Json::Str(s) => Ok(s),
            Json::Object(_) => Err("an object"),
            Json::Other(kind) => Err(kind),
        }
    }
}

/// A field that is present, even as `null` (which `Option` alone would
/// read as absent, hiding what was sent).
fn present<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Json<'de>>, D::Error> {
    Json::deserialize(deserializer).map(Some)
}

/// The same for fields kept as raw JSON text.
fn present_raw<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(deserializer).map(Some)
}

/// The identity part of a detail: name, id and time.
fn identity<'a>(
    fields: &mut DetailFields<'a>,
    detail_type: Option<&str>,
) -> Result<(Cow<'a, str>, EventId, DateTime<Utc>), DecodeError> {
    let name = match (fields.kind.take().map(Json::string), detail_type) {
        (Some(Ok(name)), Some(dt)) if name != dt => {
            return Err(DecodeError::new(
                Some(dt),
                "detail.type",
                format!("`{name}` disagrees with the envelope's detail-type `{dt}`"),
            ))
        }
        (Some(Ok(name)), _) => name,
        (None, Some(dt)) => Cow::Owned(dt.to_owned()),
        (Some(Err(found)), _) => {
            return Err(DecodeError::new(
                detail_type,
                "detail.type",
                format!("expected the event name as a string, found {found}"),
            ))
        }
        (None, None) => {
            return Err(DecodeError::new(
                None,
                "detail.type",
                "missing: expected the event name",
            ))
        }
    };
    let event = Some(&*name);
    let id = match fields.id.take().map(Json::string) {
        Some(Ok(id)) if !id.is_empty() => EventId::from(&*id),
        Some(Ok(_)) => {
            return Err(DecodeError::new(
                event,
                "detail.id",
                "expected a non-empty string, found an empty string",
            ))
        }
        Some(Err(found)) => {
            return Err(DecodeError::new(
                event,
                "detail.id",
                format!("expected a non-empty string, found {found}"),
            ))
        }
        None => {
            return Err(DecodeError::new(
                event,
                "detail.id",
                "missing: expected the event id as a string",
            ))
        }
    };
    let occurred_on = match fields.occurred_on.take().map(Json::string) {
        Some(Ok(text)) => {
            parse_time(&text).map_err(|e| DecodeError::new(event, "detail.occurred_on", e))?
        }
        Some(Err(found)) => {
            return Err(DecodeError::new(
                event,
                "detail.occurred_on",
                format!("expected an ISO 8601 string, found {found}"),
            ))
        }
        None => {
            return Err(DecodeError::new(
                event,
                "detail.occurred_on",
                "missing: expected an ISO 8601 string",
            ))
        }
    };
    Ok((name, id, occurred_on))
}

const EXPECTED_ATTRIBUTES: &str = "expected a JSON object or a string holding one";

/// The attributes of a detail: the JSON text of an object, as sent or
/// unescaped from the string that holds it.
fn attributes_text<'a>(fields: DetailFields<'a>, event: &str) -> Result<Cow<'a, str>, DecodeError> {
    match fields.attributes {
        Some(Json::Object(text)) => Ok(Cow::Owned(text)),
        Some(json) => json.string().map_err(|found| {
            DecodeError::new(
                Some(event),
                "detail.attributes",
                format!("{EXPECTED_ATTRIBUTES}, found {found}"),
            )
        }),
        None => Err(DecodeError::new(
            Some(event),
            "detail.attributes",
            format!("missing: {EXPECTED_ATTRIBUTES}"),
        )),
    }
}

fn decode_detail_in(json: &str, detail_type: Option<&str>) -> Result<RawEvent, DecodeError> {
    let mut fields: DetailFields = parse_object(json, detail_type, "detail")?;
    let (name, id, occurred_on) = identity(&mut fields, detail_type)?;
    let trace = std::mem::take(&mut fields.trace).0;
    let attributes = attributes_text(fields, &name)?;
    // Validate now, so a stored or forwarded event is always readable.
    check_object(&attributes)
        .map_err(|e| DecodeError::new(Some(&name), "detail.attributes", e.problem().to_owned()))?;
    Ok(RawEvent {
        id,
        name: name.into_owned(),
        occurred_on,
        attributes: attributes.into_owned(),
        trace,
    })
}

/// Decodes a `detail` straight into a typed event (the fast path when the
/// type is known): the same checks and errors as [`decode_detail`] followed
/// by [`RawEvent::decode`], in one pass over the attributes.
///
/// # Errors
///
/// A [`DecodeError`] when the detail is not valid, names another event than
/// `E`, or its attributes are not what `E` reads.
pub fn decode_event<E: DomainEvent>(json: &str) -> Result<Event<E>, DecodeError> {
    let mut fields: DetailFields = parse_object(json, Some(E::EVENT_NAME), "detail")?;
    let (name, id, occurred_on) = identity(&mut fields, None)?;
    if name != E::EVENT_NAME {
        return Err(DecodeError::new(
            Some(E::EVENT_NAME),
            "type",
            format!("expected `{}`, found `{name}`", E::EVENT_NAME),
        ));
    }
    let attributes = attributes_text(fields, &name)?;
    let payload = E::from_json(&attributes).map_err(|e| match e.field() {
        "attributes" => DecodeError::new(
            Some(E::EVENT_NAME),
            "detail.attributes",
            e.problem().to_owned(),
        ),
        _ => e,
    })?;
    Ok(Event::with_identity(id, occurred_on, payload))
}

/// Deprecated: the name said nothing of whose envelope it is.
#[doc(hidden)]
#[deprecated(note = "renamed `EventBridgeEnvelope`")]
pub type Envelope = EventBridgeEnvelope;

/// EventBridge's envelope around an event (`detail`), as an SQS queue
/// subscribed by a rule receives it; [`decode_envelope`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventBridgeEnvelope {
    /// The envelope's own id (EventBridge's, not the event's).
    pub id: Option<String>,
    /// `detail-type`: the event name, used for routing.
    pub detail_type: String,
    /// `source`.
    pub source: Option<String>,
    /// `account`.
    pub account: Option<String>,
    /// `time` as EventBridge stamped it.
    pub time: Option<String>,
    /// `region`.
    pub region: Option<String>,
    /// `resources`.
    pub resources: Vec<String>,
    /// The event carried in `detail`.
    pub event: RawEvent,
}

#[derive(Deserialize)]
struct EnvelopeFields<'a> {
    #[serde(borrow, default, deserialize_with = "present")]
    id: Option<Json<'a>>,
    #[serde(rename = "detail-type", borrow, default, deserialize_with = "present")]
    detail_type: Option<Json<'a>>,
    #[serde(borrow, default, deserialize_with = "present")]
    source: Option<Json<'a>>,
    #[serde(borrow, default, deserialize_with = "present")]
    account: Option<Json<'a>>,
    #[serde(borrow, default, deserialize_with = "present")]
    time: Option<Json<'a>>,
    #[serde(borrow, default, deserialize_with = "present")]
    region: Option<Json<'a>>,
    #[serde(borrow, default, deserialize_with = "present_raw")]
    resources: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present_raw")]
    detail: Option<&'a RawValue>,
}

/// The envelope as a consumer reads it in one pass: only `detail-type` and
/// the `detail` object are kept (borrowed from the body where they have no
/// escapes); the other envelope fields are checked as JSON and skipped
/// (still named, so a repeated one is refused as [`decode_envelope`]
/// refuses it).
#[derive(Deserialize)]
struct EnvelopeOnePass<'a> {
    #[serde(rename = "id", default)]
    _id: Option<IgnoredAny>,
    #[serde(rename = "detail-type", borrow, default, deserialize_with = "present")]
    detail_type: Option<Json<'a>>,
    #[serde(rename = "source", default)]
    _source: Option<IgnoredAny>,
    #[serde(rename = "account", default)]
    _account: Option<IgnoredAny>,
    #[serde(rename = "time", default)]
    _time: Option<IgnoredAny>,
    #[serde(rename = "region", default)]
    _region: Option<IgnoredAny>,
    #[serde(rename = "resources", default)]
    _resources: Option<IgnoredAny>,
    #[serde(borrow, default, deserialize_with = "present_object")]
    detail: Option<DetailFields<'a>>,
}

/// A nested `detail` read in place, as an object only (a derived struct
/// would also take an array), like [`parse_object`] reads it from its text.
fn present_object<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<DetailFields<'de>>, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = DetailFields<'de>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            map: A,
        ) -> Result<DetailFields<'de>, A::Error> {
            DetailFields::deserialize(serde::de::value::MapAccessDeserializer::new(map))
        }
    }
    deserializer.deserialize_map(V).map(Some)
}

/// An event received in an envelope, read in one pass by
/// [`read_envelope`]: its attributes are *not yet* checked to be a JSON
/// object (decoding them into their type does that).
pub(crate) struct Received<'a> {
    pub(crate) name: Cow<'a, str>,
    pub(crate) id: EventId,
    pub(crate) occurred_on: DateTime<Utc>,
    pub(crate) attributes: Cow<'a, str>,
    pub(crate) trace: Option<TraceContext>,
}

/// Reads an envelope in one pass, with every check [`decode_envelope`]
/// makes but the attributes' (see [`Received`]). `None` for anything
/// [`decode_envelope`] refuses or might refuse: it then says why.
pub(crate) fn read_envelope(json: &str) -> Option<Received<'_>> {
    if !json.trim_start().starts_with('{') {
        return None;
    }
    let fields: EnvelopeOnePass = serde_json::from_str(json).ok()?;
    let Some(Json::Str(detail_type)) = fields.detail_type else {
        return None;
    };
    let mut detail = fields.detail?;
    let (name, id, occurred_on) = identity(&mut detail, Some(&detail_type)).ok()?;
    let trace = std::mem::take(&mut detail.trace).0;
    let attributes = attributes_text(detail, &name).ok()?;
    let name = match (name, detail_type) {
        // The detail's `type` borrows from the body when it has no escapes.
        (Cow::Borrowed(name), _) => Cow::Borrowed(name),
        (Cow::Owned(_), detail_type) => detail_type,
    };
    Some(Received {
        name,
        id,
        occurred_on,
        attributes,
        trace,
    })
}

/// Decodes a whole EventBridge envelope (an SQS message body).
///
/// # Errors
///
/// A [`DecodeError`] naming the field at fault when `json` is not an
/// EventBridge envelope (no `detail-type`, no `detail` object) or its detail is
/// not valid.
pub fn decode_envelope(json: &str) -> Result<EventBridgeEnvelope, DecodeError> {
    let fields: EnvelopeFields = parse_object(json, None, "envelope")?;
    let detail_type = match fields.detail_type.map(Json::string) {
        Some(Ok(dt)) => dt.into_owned(),
        Some(Err(found)) => {
            return Err(DecodeError::new(
                None,
                "detail-type",
                format!("expected the event name as a string, found {found}"),
            ))
        }
        None => {
            return Err(DecodeError::new(
                None,
                "detail-type",
                "missing: expected the event name",
            ))
        }
    };
    let detail = fields.detail.ok_or_else(|| {
        DecodeError::new(
            Some(&detail_type),
            "detail",
            "missing: expected a JSON object",
        )
    })?;
    let event = decode_detail_in(detail.get(), Some(&detail_type))?;
    let text = |json: Option<Json>| json.and_then(|j| j.string().ok()).map(Cow::into_owned);
    Ok(EventBridgeEnvelope {
        id: text(fields.id),
        source: text(fields.source),
        account: text(fields.account),
        time: text(fields.time),
        region: text(fields.region),
        resources: fields
            .resources
            .and_then(|r| serde_json::from_str::<Vec<String>>(r.get()).ok())
            .unwrap_or_default(),
        detail_type,
        event,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `parse_time` gave before the written form had a reader of its
    /// own: the general parser alone.
    fn general(text: &str) -> Option<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    #[test]
    fn the_written_form_reads_as_the_general_parser_reads_it() {
        // Every month's first and last days, leap years and not, the ends of
        // the day and of the year range, microseconds at both ends.
        let mut checked = 0;
        for year in [1, 4, 1900, 2000, 2024, 2026, 9999] {
            for month in 1..=12 {
                for day in [1, 28, 29, 30, 31] {
                    for (h, m, s, us) in
                        [(0, 0, 0, 0), (23, 59, 59, 999_999), (10, 15, 30, 123_456)]
                    {
                        let text = format!(
                            "{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{us:06}+00:00"
                        );
                        let fast = parse_written_time(&text);
                        assert_eq!(fast, general(&text), "{text}");
                        if let Some(t) = fast {
                            assert_eq!(format_time(t), text);
                            checked += 1;
                        }
                    }
                }
            }
        }
        assert!(checked > 1000, "{checked}");
    }

    #[test]
    fn anything_else_is_left_to_the_general_parser() {
        for text in [
            "2026-02-30T10:15:30.000000+00:00", // no such day
            "2026-13-01T10:15:30.000000+00:00", // no such month
            "2026-11-26T24:00:00.000000+00:00", // no such hour
            "2026-11-26T10:60:00.000000+00:00", // no such minute
            "2016-12-31T23:59:60.000000+00:00", // a leap second
            "0000-01-01T00:00:00.000000+00:00", // year 0: out of range
            "2026-11-26T10:15:30.000000+01:00", // another offset
            "2026-11-26T10:15:30.00000+00:00Z", // not the form
            "2026-11-26T10:15:30.12345a+00:00", // not a digit
            "2026-11-26 10:15:30.000000+00:00", // a space
            "+026-11-26T10:15:30.000000+00:00", // a sign
        ] {
            assert_eq!(text.len(), 32, "{text}");
            assert_eq!(parse_written_time(text), None, "{text}");
        }
        // ... which still reads what it read before, and refuses the rest.
        assert_eq!(
            parse_time("2016-12-31T23:59:60.000000+00:00").ok(),
            general("2016-12-31T23:59:60.000000+00:00")
        );
        assert!(parse_time("2026-02-30T10:15:30.000000+00:00")
            .unwrap_err()
            .starts_with("expected an ISO 8601 time"));
        assert!(parse_time("0000-01-01T00:00:00.000000+00:00")
            .unwrap_err()
            .contains("outside"));
        assert_eq!(
            parse_time("2026-11-26T10:15:30.000000+01:00").ok(),
            general("2026-11-26T10:15:30.000000+01:00")
        );
    }
}
