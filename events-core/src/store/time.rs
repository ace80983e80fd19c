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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_form_and_the_older_rfc_3339_form_read_back() {
        let t = DateTime::<Utc>::from_timestamp(1_700_000_000, 123_456_789).unwrap();
        assert_eq!(store_time(t), "2023-11-14T22:13:20.123456789Z");
        assert_eq!(parse_store_time(&store_time(t)), Ok(t));
        assert_eq!(
            parse_store_time("2023-11-14T22:13:20.123456789+00:00"),
            Ok(t)
        );
        assert_eq!(
            parse_store_time("yesterday"),
            Err("expected an ISO 8601 time such as `2026-11-26T10:15:30.123456+00:00`, found `yesterday`".to_owned())
        );
    }

    #[test]
    fn a_quoted_prefix_is_cut_at_a_character_boundary() {
        assert_eq!(prefix("short", 64), "short");
        assert_eq!(prefix("ééé", 3), "é… (6 bytes)");
    }
}
