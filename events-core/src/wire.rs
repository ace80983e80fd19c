//! The wire format shared with Python's `package-events-bus` (SPEC §4).
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
use serde::Serialize;
use serde_json::Value;

use crate::envelope::{EventId, RawEvent};
use crate::error::DecodeError;
use crate::event::json_kind;

/// The parts of one PutEvents request entry (without the bus name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// `Source`: who publishes, e.g. `testclean.api`.
    pub source: String,
    /// `DetailType`: the full event name.
    pub detail_type: String,
    /// `Detail`: the JSON text of the detail object.
    pub detail: String,
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
pub fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Ok(t.and_utc());
        }
    }
    Err(format!(
        "expected an ISO 8601 time such as `2026-11-26T10:15:30.123456+00:00`, found `{text}`"
    ))
}

/// The `Detail` JSON text of an event.
pub fn encode_detail(event: &RawEvent) -> String {
    let out = DetailOut {
        id: event.id.as_str(),
        kind: &event.name,
        occurred_on: format_time(event.occurred_on),
        attributes: &event.attributes,
    };
    // A struct of strings always serializes; the fallback keeps this total.
    serde_json::to_string(&out).unwrap_or_default()
}

/// The PutEvents entry parts of an event, published by `source`.
pub fn entry(event: &RawEvent, source: &str) -> Entry {
    Entry {
        source: source.to_owned(),
        detail_type: event.name.clone(),
        detail: encode_detail(event),
    }
}

/// Decodes the JSON text of a `detail` object.
pub fn decode_detail(json: &str) -> Result<RawEvent, DecodeError> {
    let value = parse_object(json, "detail")?;
    decode_detail_value(&value, None)
}

/// Decodes a `detail` object; `detail_type` is the envelope's `detail-type`,
/// used when the detail carries no `type`.
pub fn decode_detail_value(
    detail: &Value,
    detail_type: Option<&str>,
) -> Result<RawEvent, DecodeError> {
    let Value::Object(detail) = detail else {
        return Err(DecodeError::new(
            detail_type,
            "detail",
            format!("expected a JSON object, found {}", json_kind(detail)),
        ));
    };
    let name = match (detail.get("type"), detail_type) {
        (Some(Value::String(name)), Some(dt)) if name != dt => {
            return Err(DecodeError::new(
                Some(dt),
                "detail.type",
                format!("`{name}` disagrees with the envelope's detail-type `{dt}`"),
            ))
        }
        (Some(Value::String(name)), _) => name.clone(),
        (None, Some(dt)) => dt.to_owned(),
        (Some(other), _) => {
            return Err(DecodeError::new(
                detail_type,
                "detail.type",
                format!(
                    "expected the event name as a string, found {}",
                    json_kind(other)
                ),
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
    let event = Some(name.as_str());
    let id = match detail.get("id") {
        Some(Value::String(id)) if !id.is_empty() => EventId::from(id.as_str()),
        Some(other) => {
            return Err(DecodeError::new(
                event,
                "detail.id",
                format!("expected a non-empty string, found {}", describe(other)),
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
    let occurred_on = match detail.get("occurred_on") {
        Some(Value::String(text)) => {
            parse_time(text).map_err(|e| DecodeError::new(event, "detail.occurred_on", e))?
        }
        Some(other) => {
            return Err(DecodeError::new(
                event,
                "detail.occurred_on",
                format!("expected an ISO 8601 string, found {}", json_kind(other)),
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
    let attributes = match detail.get("attributes") {
        Some(Value::String(text)) => {
            // Validate now, so a stored or forwarded event is always readable.
            parse_object(text, "detail.attributes").map_err(|e| e.in_event(&name))?;
            text.clone()
        }
        Some(object @ Value::Object(_)) => object.to_string(),
        Some(other) => {
            return Err(DecodeError::new(
                event,
                "detail.attributes",
                format!(
                    "expected a JSON object or a string holding one, found {}",
                    json_kind(other)
                ),
            ))
        }
        None => {
            return Err(DecodeError::new(
                event,
                "detail.attributes",
                "missing: expected a JSON object or a string holding one",
            ))
        }
    };
    Ok(RawEvent {
        id,
        name,
        occurred_on,
        attributes,
    })
}

/// The EventBridge envelope, as an SQS queue subscribed by a rule receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
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

/// Decodes a whole EventBridge envelope (an SQS message body).
pub fn decode_envelope(json: &str) -> Result<Envelope, DecodeError> {
    let Value::Object(envelope) = parse_object(json, "envelope")? else {
        return Err(DecodeError::new(None, "envelope", "expected a JSON object"));
    };
    let detail_type = match envelope.get("detail-type") {
        Some(Value::String(dt)) => dt.clone(),
        Some(other) => {
            return Err(DecodeError::new(
                None,
                "detail-type",
                format!(
                    "expected the event name as a string, found {}",
                    json_kind(other)
                ),
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
    let detail = envelope.get("detail").ok_or_else(|| {
        DecodeError::new(
            Some(&detail_type),
            "detail",
            "missing: expected a JSON object",
        )
    })?;
    let event = decode_detail_value(detail, Some(&detail_type))?;
    let text = |key: &str| envelope.get(key).and_then(Value::as_str).map(str::to_owned);
    Ok(Envelope {
        id: text("id"),
        source: text("source"),
        account: text("account"),
        time: text("time"),
        region: text("region"),
        resources: match envelope.get("resources") {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            _ => Vec::new(),
        },
        detail_type,
        event,
    })
}

fn parse_object(json: &str, field: &str) -> Result<Value, DecodeError> {
    match serde_json::from_str::<Value>(json) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(other) => Err(DecodeError::new(
            None,
            field,
            format!("expected a JSON object, found {}", json_kind(&other)),
        )),
        Err(e) => Err(DecodeError::new(None, field, format!("malformed JSON: {e}")).with_source(e)),
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::String(s) if s.is_empty() => "an empty string".to_owned(),
        other => json_kind(other).to_owned(),
    }
}
