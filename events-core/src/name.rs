//! Event names: `[company].[service].[version].event.[resource].[action]`.
//!
//! `#[derive(DomainEvent)]` checks every rule while your crate compiles; the
//! same rules (one shared source file) parse names that arrive at run time.

use std::fmt;

#[path = "name_rules.rs"]
#[allow(missing_docs, dead_code)]
pub(crate) mod rules;

pub use rules::{IRREGULAR_PAST, MAX_NAME_LEN};

/// The parts of an event name, as a `DomainEvent` declares them.
///
/// ```
/// use events_core::EventName;
///
/// let name = EventName::parse("testclean.api.1.event.company.created").unwrap();
/// assert_eq!(name.company, "testclean");
/// assert_eq!(name.version, 1);
/// assert_eq!(name.action, "created");
/// assert_eq!(name.to_string(), "testclean.api.1.event.company.created");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EventName<'a> {
    /// The company (or product) that owns the event, e.g. `testclean`.
    pub company: &'a str,
    /// The service that emits it, e.g. `api`.
    pub service: &'a str,
    /// The schema version, `1..=u32::MAX`.
    pub version: u32,
    /// `event` for a domain event, `command` for a command (SPEC §11).
    pub message_type: &'a str,
    /// The aggregate or entity, e.g. `company`.
    pub resource: &'a str,
    /// What happened, in the past tense, e.g. `created`; for a command,
    /// what to do, an infinitive, e.g. `send`.
    pub action: &'a str,
}

/// Why a string is not a valid event name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid event name `{name}`: {reason}")]
pub struct InvalidName {
    name: String,
    reason: String,
}

impl InvalidName {
    fn new(name: &str, reason: impl Into<String>) -> Self {
        InvalidName {
            name: name.to_owned(),
            reason: reason.into(),
        }
    }
}

impl<'a> EventName<'a> {
    /// The message type of every domain event: `event`.
    pub const MESSAGE_TYPE: &'static str = rules::MESSAGE_TYPE_EVENT;

    /// The message type of every command: `command`.
    pub const MESSAGE_TYPE_COMMAND: &'static str = rules::MESSAGE_TYPE_COMMAND;

    /// Whether this names a command (`message_type` is `command`).
    pub fn is_command(&self) -> bool {
        self.message_type == Self::MESSAGE_TYPE_COMMAND
    }

    /// Parses and validates a full event name.
    ///
    /// # Errors
    ///
    /// An [`InvalidName`] saying which rule `name` breaks (length, parts,
    /// segment characters, version, message type, past-tense action).
    pub fn parse(name: &'a str) -> Result<Self, InvalidName> {
        if name.len() > MAX_NAME_LEN {
            return Err(InvalidName::new(
                name,
                format!(
                    "it is {} characters long; the limit is {MAX_NAME_LEN}",
                    name.len()
                ),
            ));
        }
        let parts: Vec<&str> = name.split('.').collect();
        let [company, service, version, message_type, resource, action] = parts[..] else {
            return Err(InvalidName::new(
                name,
                format!(
                    "expected 6 dot-separated parts \
                     (company.service.version.event.resource.action), found {}",
                    parts.len()
                ),
            ));
        };
        for (key, value) in [
            ("company", company),
            ("service", service),
            ("resource", resource),
        ] {
            rules::check_segment(value)
                .map_err(|e| InvalidName::new(name, format!("{key}: {e}")))?;
        }
        let action_rule = match message_type {
            Self::MESSAGE_TYPE => rules::check_action,
            Self::MESSAGE_TYPE_COMMAND => rules::check_command_action,
            _ => {
                return Err(InvalidName::new(
                    name,
                    format!("message type is `{message_type}`, expected `event` or `command`"),
                ))
            }
        };
        action_rule(action).map_err(|e| InvalidName::new(name, format!("action: {e}")))?;
        let version = match version.parse::<u32>() {
            Ok(v) if v >= 1 && !version.starts_with('0') => v,
            _ => {
                return Err(InvalidName::new(
                    name,
                    format!(
                        "version `{version}` is not an integer from 1 to {}",
                        u32::MAX
                    ),
                ))
            }
        };
        Ok(EventName {
            company,
            service,
            version,
            message_type,
            resource,
            action,
        })
    }
}

impl fmt::Display for EventName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}.{}.{}.{}.{}",
            self.company, self.service, self.version, self.message_type, self.resource, self.action
        )
    }
}

#[cfg(test)]
mod tests {
    use super::rules::*;
    use super::*;

    #[test]
    fn irregular_list_is_sorted_for_binary_search() {
        assert!(IRREGULAR_PAST.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn past_tense_rule() {
        for ok in [
            "created",
            "updated",
            "sent",
            "paid",
            "email_sent",
            "rebuilt",
            "deleted",
        ] {
            assert_eq!(check_action(ok), Ok(()), "{ok}");
        }
        for bad in ["create", "send", "ed", "created_now", "pay"] {
            assert!(
                matches!(check_action(bad), Err(PartError::NotPastTense(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn segment_rule() {
        assert_eq!(check_segment("acme_2"), Ok(()));
        assert_eq!(check_segment(""), Err(PartError::Empty));
        assert_eq!(check_segment("2acme"), Err(PartError::BadStart('2')));
        assert_eq!(check_segment("Acme"), Err(PartError::BadStart('A')));
        assert_eq!(check_segment("ac-me"), Err(PartError::BadChar('-')));
    }

    #[test]
    fn suggestions() {
        assert_eq!(suggest_segment("CompanyName"), "company_name");
        assert_eq!(suggest_segment("my-service"), "my_service");
        assert_eq!(suggest_segment("2fa"), "2fa");
        assert_eq!(suggest_action("Create"), "created");
        assert_eq!(suggest_action("email_send"), "email_sent");
        assert_eq!(suggest_action("apply"), "applied");
        assert_eq!(suggest_action("deploy"), "deployed");
        assert_eq!(suggest_action("paid"), "paid");
    }

    #[test]
    fn parse_rejects_each_rule() {
        let long = format!("a.b.1.event.{}.created", "r".repeat(120));
        for bad in [
            "a.b.1.event.c",
            "a.b.0.event.c.created",
            "a.b.01.event.c.created",
            "a.b.x.event.c.created",
            "a.b.4294967296.event.c.created",
            "a.b.1.command.c.created",
            "A.b.1.event.c.created",
            "a.b.1.event.c.create",
            long.as_str(),
        ] {
            let err = EventName::parse(bad).unwrap_err();
            assert!(
                err.to_string()
                    .starts_with(&format!("invalid event name `{bad}`: ")),
                "{err}"
            );
        }
        let max = EventName::parse("a.b.4294967295.event.c.created").unwrap();
        assert_eq!(max.version, u32::MAX);
    }

    #[test]
    fn commands_take_an_infinitive() {
        let send = EventName::parse("acme.billing.1.command.invoice.send").unwrap();
        assert!(send.is_command());
        assert_eq!(send.to_string(), "acme.billing.1.command.invoice.send");
        for ok in ["send", "create", "cancel", "reset", "feed", "email_send"] {
            assert_eq!(check_command_action(ok), Ok(()), "{ok}");
        }
        for bad in ["sent", "created", "email_sent", "paid"] {
            assert!(
                matches!(check_command_action(bad), Err(PartError::PastTense(_))),
                "{bad}"
            );
        }
        let past = EventName::parse("a.b.1.command.c.sent").unwrap_err();
        assert!(past.to_string().contains("action: "), "{past}");
        let query = EventName::parse("a.b.1.query.c.get").unwrap_err();
        assert!(
            query.to_string().contains("message type is `query`"),
            "{query}"
        );
    }

    #[test]
    fn infinitive_suggestions() {
        for (past, verb) in [
            ("sent", "send"),
            ("created", "create"),
            ("email_sent", "email_send"),
            ("paid", "pay"),
            ("applied", "apply"),
            ("cancelled", "cancel"),
            ("stopped", "stop"),
            ("placed", "place"),
            ("archived", "archive"),
            ("deleted", "delete"),
            ("booked", "book"),
            ("opened", "open"),
            ("changed", "change"),
            ("closed", "close"),
            ("enabled", "enable"),
            ("renamed", "rename"),
            ("noted", "note"),
            ("edited", "edit"),
            ("billed", "bill"),
            ("added", "add"),
            ("queued", "queue"),
            ("confirmed", "confirm"),
            ("send", "send"),
        ] {
            assert_eq!(suggest_infinitive(past), verb, "for `{past}`");
        }
    }
}
