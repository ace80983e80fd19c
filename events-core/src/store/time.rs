//! How the store writes times and reads them back.
//!
//! The form is total over every `DateTime<Utc>`, so any
//! event the wire reader (or a caller building a `RawEvent`) accepts is
//! written and read back exactly.

use chrono::{DateTime, NaiveDateTime, Utc};

use crate::wire::parse_time;

const FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.9fZ";

/// A time as the store writes it: UTC, nanoseconds, and a signed year
/// outside 0000–9999 (`+10000-01-01T00:59:59.000000000Z`), so every time
/// chrono holds round-trips.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use events_core::__private::{parse_store_time, store_time};
/// let t = Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap() + chrono::Duration::hours(1);
/// assert_eq!(parse_store_time(&store_time(t)), Ok(t));
/// ```
pub fn store_time(time: DateTime<Utc>) -> String {
    time.format(FORMAT).to_string()
}

/// Reads a time the store wrote (this build's form or an older build's
/// RFC 3339 form).
pub fn parse_store_time(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.fZ") {
        return Ok(t.and_utc());
    }
    parse_time(text)
}

/// At most `max` bytes of `text` (cut at a character boundary), with the
/// full length when it was cut: what error messages quote of a bad value.
pub(crate) fn prefix(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &text[..end], text.len())
}
