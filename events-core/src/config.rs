//! Configuration, in code or from the environment (SPEC §6).
//!
//! # Variables
//!
//! | variable | values | default |
//! | --- | --- | --- |
//! | `EVENT_BUS_ENABLED` | `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`) | `true` |
//! | `EVENT_BUS_ASYNC` | same; `true` spawns handlers instead of awaiting them | `false` |
//! | `EVENT_BUS_MODE` | `local` or `eventbridge` | `local` |
//! | `EVENT_BUS_NAME` | EventBridge bus name or ARN | `default` |
//! | `EVENT_BUS_SOURCE` | PutEvents `Source` (≤ 256 chars, not `aws.*`) | `{company}.{service}` of each event |
//! | `EVENT_BUS_STORE_PATH` | path of the SQLite store | `.events-bus/events.db` |
//! | `EVENT_BUS_HANDLER_TIMEOUT` | longest a handler may run (`500ms`, `30s`, `5m`, `1h`; a bare number is seconds): past it the call is cancelled and counts as a failure | `60s` |
//!
//! [`EventBus::from_env`](crate::EventBus::from_env) builds a bus from them;
//! [`EventBus::builder_from_env`](crate::EventBus::builder_from_env) starts a
//! builder from them (to register handlers with dependencies, or override a
//! setting in code). [`EventBus::builder`](crate::EventBus::builder) reads
//! none of them.
//!
//! # Errors
//!
//! A bad value is an error naming the variable and the accepted values, never
//! a silent default:
//!
//! ```
//! use events_core::BusConfig;
//!
//! let err = BusConfig::from_lookup(|var| (var == "EVENT_BUS_MODE").then(|| "kafka".to_owned())).unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "EVENT_BUS_MODE=`kafka` is not valid: expected `local` or `eventbridge`"
//! );
//! ```

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// Where published events go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// The embedded default: events are stored durably in the local store
    /// and dispatched to in-process handlers. No AWS needed.
    #[default]
    Local,
    /// Events are sent to AWS EventBridge (PutEvents), failing over to the
    /// local store. Needs a publisher (the `events-eventbridge` crate).
    EventBridge,
}

impl Mode {
    /// The value of `EVENT_BUS_MODE` for this mode.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Local => "local",
            Mode::EventBridge => "eventbridge",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s.trim().to_ascii_lowercase().as_str() {
            "local" => Ok(Mode::Local),
            "eventbridge" => Ok(Mode::EventBridge),
            _ => Err(()),
        }
    }
}

/// A configuration value that cannot be used. Its `Debug` is its message,
/// so `main() -> Result<(), Box<dyn Error>>` shows the sentence.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}=`{value}` is not valid: expected {expected}")]
pub struct ConfigError {
    /// The variable (or builder setting) at fault.
    pub var: &'static str,
    /// The value given.
    pub value: String,
    /// What is accepted.
    pub expected: &'static str,
}

impl fmt::Debug for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The bus configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusConfig {
    /// Whether publishing does anything (`EVENT_BUS_ENABLED`).
    pub enabled: bool,
    /// Whether handlers are spawned (`true`) or awaited by `publish` (`EVENT_BUS_ASYNC`).
    pub async_handlers: bool,
    /// Local or EventBridge (`EVENT_BUS_MODE`).
    pub mode: Mode,
    /// The EventBridge bus (`EVENT_BUS_NAME`).
    pub bus_name: String,
    /// The PutEvents `Source`; `None` means `{company}.{service}` of each event (`EVENT_BUS_SOURCE`).
    pub source: Option<String>,
    /// The SQLite store's path (`EVENT_BUS_STORE_PATH`).
    pub store_path: PathBuf,
    /// The longest one handler call may run (`EVENT_BUS_HANDLER_TIMEOUT`,
    /// default [`DEFAULT_HANDLER_TIMEOUT`]): past it the call is cancelled
    /// (its future dropped) and counts as a failure, so a handler that
    /// never returns cannot hold a message, a concurrency slot or a
    /// publish for ever.
    pub handler_timeout: Duration,
}

/// The default handler timeout: 60 seconds.
pub const DEFAULT_HANDLER_TIMEOUT: Duration = Duration::from_secs(60);

/// The default store path, relative to the working directory.
pub const DEFAULT_STORE_PATH: &str = ".events-bus/events.db";

impl Default for BusConfig {
    fn default() -> Self {
        BusConfig {
            enabled: true,
            async_handlers: false,
            mode: Mode::Local,
            bus_name: "default".to_owned(),
            source: None,
            store_path: PathBuf::from(DEFAULT_STORE_PATH),
            handler_timeout: DEFAULT_HANDLER_TIMEOUT,
        }
    }
}

const BOOL_EXPECTED: &str = "`true` or `false` (also `1`/`0`, `yes`/`no`, `on`/`off`)";

/// Reads a boolean variable's value the way every `EVENT_BUS_*` switch is
/// read: `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`, any case, spaces
/// around ignored; anything else is a [`ConfigError`] naming `var`.
///
/// ```
/// use events_core::config::parse_bool;
/// assert_eq!(parse_bool("EVENT_BUS_CHECK", " Yes"), Ok(true));
/// assert_eq!(
///     parse_bool("EVENT_BUS_CHECK", "maybe").unwrap_err().to_string(),
///     "EVENT_BUS_CHECK=`maybe` is not valid: expected `true` or `false` (also `1`/`0`, `yes`/`no`, `on`/`off`)"
/// );
/// ```
///
/// # Errors
///
/// A [`ConfigError`] naming `var` and the accepted values when `value` is none
/// of them.
pub fn parse_bool(var: &'static str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(ConfigError {
            var,
            value: value.to_owned(),
            expected: BOOL_EXPECTED,
        }),
    }
}

const DURATION_EXPECTED: &str =
    "a duration above zero: a number with a unit, `ms`, `s`, `m` or `h` (`500ms`, `30s`, `5m`, `1h`); a bare number is seconds";

/// Reads a duration variable's value the way every `EVENT_BUS_*` duration
/// is read: a whole number with a unit, `ms`, `s`, `m` or `h` (`500ms`,
/// `30s`, `5m`, `1h`), or a bare number of seconds (`30`), spaces around
/// ignored. Zero, and anything else, is a [`ConfigError`] naming `var`.
///
/// ```
/// use events_core::config::parse_duration;
/// use std::time::Duration;
/// assert_eq!(parse_duration("EVENT_BUS_HANDLER_TIMEOUT", "90s"), Ok(Duration::from_secs(90)));
/// assert_eq!(parse_duration("EVENT_BUS_HANDLER_TIMEOUT", " 250ms "), Ok(Duration::from_millis(250)));
/// assert_eq!(parse_duration("EVENT_BUS_HANDLER_TIMEOUT", "2"), Ok(Duration::from_secs(2)));
/// assert_eq!(
///     parse_duration("EVENT_BUS_HANDLER_TIMEOUT", "soon").unwrap_err().to_string(),
///     "EVENT_BUS_HANDLER_TIMEOUT=`soon` is not valid: expected a duration above zero: a number with a unit, \
///      `ms`, `s`, `m` or `h` (`500ms`, `30s`, `5m`, `1h`); a bare number is seconds"
/// );
/// ```
///
/// # Errors
///
/// A [`ConfigError`] naming `var` when `value` is not a duration of the
/// accepted forms.
pub fn parse_duration(var: &'static str, value: &str) -> Result<Duration, ConfigError> {
    let bad = || ConfigError {
        var,
        value: value.to_owned(),
        expected: DURATION_EXPECTED,
    };
    let text = value.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let n: u64 = number.parse().map_err(|_| bad())?;
    let duration = match unit.trim() {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.checked_mul(60).ok_or_else(bad)?),
        "h" => Duration::from_secs(n.checked_mul(3600).ok_or_else(bad)?),
        _ => return Err(bad()),
    };
    if duration.is_zero() {
        return Err(bad());
    }
    Ok(duration)
}

/// Checks a PutEvents `Source`.
///
/// # Errors
///
/// A [`ConfigError`] naming `var` when `source` is empty, longer than 256
/// characters or starts with `aws.`.
pub fn check_source(var: &'static str, source: &str) -> Result<(), ConfigError> {
    let bad = |expected| {
        Err(ConfigError {
            var,
            value: source.to_owned(),
            expected,
        })
    };
    if source.is_empty() || source.len() > 256 {
        return bad("a source of 1 to 256 characters, e.g. `testclean.api`");
    }
    if source.starts_with("aws.") {
        return bad("a source that does not start with `aws.` (reserved for AWS services)");
    }
    Ok(())
}

fn check_bus_name(name: &str) -> Result<(), ConfigError> {
    let ok = !name.is_empty()
        && name.len() <= 1600
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-:".contains(c));
    if ok {
        Ok(())
    } else {
        Err(ConfigError {
            var: "EVENT_BUS_NAME",
            value: name.to_owned(),
            expected: "an EventBridge bus name (`[A-Za-z0-9/._-]`) or bus ARN",
        })
    }
}

impl BusConfig {
    /// Reads the configuration from the process environment.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] for the first variable whose value is not valid.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|var| std::env::var(var).ok())
    }

    /// Reads the configuration through `lookup` (the environment, a file, a
    /// test's map). Unset variables keep their defaults; so do variables set
    /// to an empty (or all-blank) value, as deployment templates often leave
    /// them (`EVENT_BUS_MODE=` means `local`).
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] for the first variable whose value is not valid.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let lookup = |var: &str| lookup(var).filter(|v| !v.trim().is_empty());
        let mut config = BusConfig::default();
        if let Some(v) = lookup("EVENT_BUS_ENABLED") {
            config.enabled = parse_bool("EVENT_BUS_ENABLED", &v)?;
        }
        if let Some(v) = lookup("EVENT_BUS_ASYNC") {
            config.async_handlers = parse_bool("EVENT_BUS_ASYNC", &v)?;
        }
        if let Some(v) = lookup("EVENT_BUS_MODE") {
            config.mode = v.parse().map_err(|()| ConfigError {
                var: "EVENT_BUS_MODE",
                value: v.clone(),
                expected: "`local` or `eventbridge`",
            })?;
        }
        if let Some(v) = lookup("EVENT_BUS_NAME") {
            check_bus_name(&v)?;
            config.bus_name = v;
        }
        if let Some(v) = lookup("EVENT_BUS_SOURCE") {
            check_source("EVENT_BUS_SOURCE", &v)?;
            config.source = Some(v);
        }
        if let Some(v) = lookup("EVENT_BUS_STORE_PATH") {
            if v.trim().is_empty() {
                return Err(ConfigError {
                    var: "EVENT_BUS_STORE_PATH",
                    value: v,
                    expected: "a file path, e.g. `.events-bus/events.db`",
                });
            }
            config.store_path = PathBuf::from(v);
        }
        if let Some(v) = lookup("EVENT_BUS_HANDLER_TIMEOUT") {
            config.handler_timeout = parse_duration("EVENT_BUS_HANDLER_TIMEOUT", &v)?;
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(pairs: &[(&str, &str)]) -> Result<BusConfig, ConfigError> {
        BusConfig::from_lookup(|var| {
            pairs
                .iter()
                .find(|(k, _)| *k == var)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn defaults_when_unset() {
        assert_eq!(with(&[]).unwrap(), BusConfig::default());
    }

    #[test]
    fn reads_every_variable() {
        let c = with(&[
            ("EVENT_BUS_ENABLED", "off"),
            ("EVENT_BUS_ASYNC", "TRUE"),
            ("EVENT_BUS_MODE", "EventBridge"),
            ("EVENT_BUS_NAME", "orders-bus"),
            ("EVENT_BUS_SOURCE", "testclean.api"),
            ("EVENT_BUS_STORE_PATH", "/tmp/x.db"),
            ("EVENT_BUS_HANDLER_TIMEOUT", "5m"),
        ])
        .unwrap();
        assert_eq!(c.handler_timeout, Duration::from_secs(300));
        assert!(!c.enabled);
        assert!(c.async_handlers);
        assert_eq!(c.mode, Mode::EventBridge);
        assert_eq!(c.bus_name, "orders-bus");
        assert_eq!(c.source.as_deref(), Some("testclean.api"));
        assert_eq!(c.store_path, PathBuf::from("/tmp/x.db"));
    }

    #[test]
    fn bad_values_name_the_variable_and_the_accepted_values() {
        let e = with(&[("EVENT_BUS_ENABLED", "maybe")]).unwrap_err();
        assert_eq!(e.var, "EVENT_BUS_ENABLED");
        assert!(e.to_string().contains("`true` or `false`"), "{e}");
        let e = with(&[("EVENT_BUS_ASYNC", "sometimes")]).unwrap_err();
        assert_eq!(e.var, "EVENT_BUS_ASYNC");
        let e = with(&[("EVENT_BUS_SOURCE", "aws.events")]).unwrap_err();
        assert!(e.to_string().contains("aws."), "{e}");
        let e = with(&[("EVENT_BUS_NAME", "my bus")]).unwrap_err();
        assert_eq!(e.var, "EVENT_BUS_NAME");
        for bad in [
            "0",
            "0s",
            "-1s",
            "1.5s",
            "10 minutes",
            "s",
            "99999999999999999999h",
        ] {
            let e = with(&[("EVENT_BUS_HANDLER_TIMEOUT", bad)]).unwrap_err();
            assert_eq!(e.var, "EVENT_BUS_HANDLER_TIMEOUT", "{bad}");
            assert!(e.to_string().contains("`30s`"), "{bad}: {e}");
        }
    }

    #[test]
    fn empty_values_are_unset() {
        let c = with(&[
            ("EVENT_BUS_ENABLED", ""),
            ("EVENT_BUS_ASYNC", " "),
            ("EVENT_BUS_MODE", ""),
            ("EVENT_BUS_NAME", ""),
            ("EVENT_BUS_SOURCE", ""),
            ("EVENT_BUS_STORE_PATH", "  "),
            ("EVENT_BUS_HANDLER_TIMEOUT", ""),
        ])
        .unwrap();
        assert_eq!(c, BusConfig::default());
    }
}
