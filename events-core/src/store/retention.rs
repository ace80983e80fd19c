//! How many handled events (local mode's journal) the store keeps, and `EVENT_BUS_STORE_RETENTION`.

use std::time::Duration;

use super::error::StoreError;
use super::time;

/// How many handled events (local mode) the store keeps. The newest are
/// kept; older ones are deleted as new ones are marked handled.
///
/// The default keeps the newest 10,000 handled events and none older than
/// 7 days. `EVENT_BUS_STORE_RETENTION` sets it from the environment
/// ([`Retention::parse`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Most handled events kept (`None`: no count limit).
    pub max_events: Option<u64>,
    /// Oldest handled event kept, by the time it was stored (`None`: no age
    /// limit).
    pub max_age: Option<Duration>,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            max_events: Some(10_000),
            max_age: Some(Duration::from_secs(7 * 24 * 3600)),
        }
    }
}

/// The environment variable that sets the [`Retention`].
pub const RETENTION_VAR: &str = "EVENT_BUS_STORE_RETENTION";

impl Retention {
    /// Keeps no handled event at all: handled means deleted.
    pub const NONE: Retention = Retention {
        max_events: Some(0),
        max_age: None,
    };

    /// Parses `EVENT_BUS_STORE_RETENTION`'s syntax: a count (`10000`), an
    /// age (`30s`, `15m`, `12h`, `7d`), both separated by a comma
    /// (`10000,7d`), or `unlimited`.
    ///
    /// ```
    /// use events_core::store::Retention;
    /// use std::time::Duration;
    /// let r = Retention::parse("5000,2d").unwrap();
    /// assert_eq!(r.max_events, Some(5000));
    /// assert_eq!(r.max_age, Some(Duration::from_secs(2 * 86_400)));
    /// assert!(Retention::parse("soon").unwrap_err().starts_with("EVENT_BUS_STORE_RETENTION=`soon` is not valid"));
    /// ```
    ///
    /// # Errors
    ///
    /// A sentence naming `EVENT_BUS_STORE_RETENTION`, the text (its first
    /// 64 characters) and the forms accepted, when `text` is none of them
    /// (or gives a count or an age twice, or an age too large).
    pub fn parse(text: &str) -> Result<Retention, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("unlimited") {
            return Ok(Retention {
                max_events: None,
                max_age: None,
            });
        }
        let mut retention = Retention {
            max_events: None,
            max_age: None,
        };
        let bad = || {
            format!(
                "{RETENTION_VAR}=`{}` is not valid: expected a count of handled events to keep (`10000`), \
                 an age (`30s`, `15m`, `12h`, `7d`), both (`10000,7d`) or `unlimited`",
                time::prefix(text, 64)
            )
        };
        for part in text.split(',').map(str::trim) {
            if let Ok(count) = part.parse::<u64>() {
                if retention.max_events.replace(count).is_some() {
                    return Err(bad());
                }
                continue;
            }
            let (number, unit) = part.split_at(part.len().saturating_sub(1));
            let seconds = match unit {
                "s" => 1,
                "m" => 60,
                "h" => 3600,
                "d" => 86_400,
                _ => return Err(bad()),
            };
            let n: u64 = number.parse().map_err(|_| bad())?;
            let age = Duration::from_secs(n.checked_mul(seconds).ok_or_else(bad)?);
            if retention.max_age.replace(age).is_some() {
                return Err(bad());
            }
        }
        Ok(retention)
    }

    /// The retention `EVENT_BUS_STORE_RETENTION` asks for, else (unset or
    /// empty) the default.
    ///
    /// # Errors
    ///
    /// [`StoreError::Config`] when the variable is not valid UTF-8 or not a
    /// retention ([`Retention::parse`]'s sentence).
    pub fn from_env() -> Result<Retention, StoreError> {
        match std::env::var(RETENTION_VAR) {
            Ok(text) if text.trim().is_empty() => Ok(Retention::default()),
            Ok(text) => Retention::parse(&text).map_err(StoreError::Config),
            Err(std::env::VarError::NotPresent) => Ok(Retention::default()),
            Err(std::env::VarError::NotUnicode(_)) => Err(StoreError::Config(format!(
                "{RETENTION_VAR} is not valid UTF-8"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_ages_both_and_unlimited() {
        assert_eq!(
            Retention::parse(" 10 ").unwrap(),
            Retention {
                max_events: Some(10),
                max_age: None
            }
        );
        assert_eq!(
            Retention::parse("15m").unwrap().max_age,
            Some(Duration::from_secs(900))
        );
        assert_eq!(
            Retention::parse("7d, 3").unwrap(),
            Retention {
                max_events: Some(3),
                max_age: Some(Duration::from_secs(7 * 86_400))
            }
        );
        assert_eq!(
            Retention::parse("UNLIMITED").unwrap(),
            Retention {
                max_events: None,
                max_age: None
            }
        );
        assert_eq!(Retention::NONE.max_events, Some(0));
        assert_eq!(Retention::default().max_events, Some(10_000));
    }

    #[test]
    fn twice_the_same_limit_an_unknown_unit_or_an_overflow_is_refused() {
        for bad in ["1,2", "1d,2h", "5w", "d", "", "99999999999999999999d"] {
            let err = Retention::parse(bad).unwrap_err();
            assert!(
                err.starts_with(&format!("{RETENTION_VAR}=`")),
                "{bad}: {err}"
            );
        }
    }
}
