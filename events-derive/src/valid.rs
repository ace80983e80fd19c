//! The rules: SPEC §2 naming rules (shared with `events-core` through one
//! source file) and the field rules, as plain functions.

use syn::LitStr;

use crate::attr::{ContainerAttrs, EXAMPLE, REQUIRED_KEYS};
use crate::ctxt::Ctxt;

// A symbolic link to `events-core/src/name_rules.rs` (as serde shares its
// internals): one source for the rules, and `cargo package` copies it in.
#[path = "name_rules.rs"]
#[allow(dead_code)]
mod rules;

pub use rules::MAX_NAME_LEN;

/// A name whose every part passed the rules.
pub struct ValidName {
    pub company: String,
    pub service: String,
    pub version: u32,
    pub resource: String,
    pub action: String,
    pub full: String,
}

fn check_part(cx: &mut Ctxt, key: &str, lit: &LitStr) -> bool {
    let value = lit.value();
    let result = if key == "action" {
        rules::check_action(&value)
    } else {
        rules::check_segment(&value)
    };
    match result {
        Ok(()) => true,
        Err(rules::PartError::NotPastTense(word)) => {
            cx.error_spanned_by(
                lit,
                format!(
                    "`action` must be in the past tense: `{word}` is not (the last `_`-separated word must end in \
                     `ed` or be an irregular past form such as `sent`, `paid`, `built`); e.g. `action = \"{}\"`",
                    rules::suggest_action(&value)
                ),
            );
            false
        }
        Err(e) => {
            let suggestion = if key == "action" {
                rules::suggest_action(&value)
            } else {
                rules::suggest_segment(&value)
            };
            let suggestion = if suggestion.is_empty()
                || !suggestion.starts_with(|c: char| c.is_ascii_lowercase())
            {
                example_of(key).to_owned()
            } else {
                suggestion
            };
            cx.error_spanned_by(
                lit,
                format!("`{key}` must match `[a-z][a-z0-9_]*`, but {e}; e.g. `{key} = \"{suggestion}\"`"),
            );
            false
        }
    }
}

fn example_of(key: &str) -> &'static str {
    match key {
        "company" => "acme",
        "service" => "billing",
        "resource" => "invoice",
        _ => "paid",
    }
}

/// Checks every part of the name; reports each broken rule at its literal.
pub fn name(cx: &mut Ctxt, attrs: &ContainerAttrs, ident: &syn::Ident) -> Option<ValidName> {
    let Some(attr_span) = attrs.attr_span else {
        cx.error_spanned_by(
            ident,
            format!("missing `#[event(...)]` attribute: `#[derive(DomainEvent)]` needs the name's parts, e.g. `{EXAMPLE}`"),
        );
        return None;
    };
    // A key written with a bad value was reported at that value already.
    let missing: Vec<String> = REQUIRED_KEYS
        .iter()
        .filter(|k| !attrs.written.iter().any(|w| w == *k))
        .map(|k| format!("`{k}`"))
        .collect();
    let mut ok = true;
    for (key, lit) in [
        ("company", &attrs.company),
        ("service", &attrs.service),
        ("resource", &attrs.resource),
        ("action", &attrs.action),
    ] {
        if let Some(lit) = lit {
            ok &= check_part(cx, key, lit);
        }
    }
    let version = attrs
        .version
        .as_ref()
        .and_then(|lit| match lit.base10_parse::<u64>() {
            Ok(v) if (1..=u64::from(u32::MAX)).contains(&v) => Some(v as u32),
            _ => {
                cx.error_spanned_by(
                    lit,
                    format!(
                        "`version` must be an integer from 1 to {}, e.g. `version = 1`",
                        u32::MAX
                    ),
                );
                None
            }
        });
    if let Some(mt) = &attrs.message_type {
        if mt.value() != rules::MESSAGE_TYPE_EVENT {
            cx.error_spanned_by(
                mt,
                "`message_type` of a domain event is always `event`: write `message_type = \"event\"` or leave it out",
            );
        }
    }
    if !missing.is_empty() && !attrs.malformed {
        let (noun, list) = match missing.len() {
            1 => ("key", missing[0].clone()),
            _ => ("keys", missing.join(", ")),
        };
        // Missing keys can't point at a value; they point at `event`.
        cx.error_at(
            attr_span,
            format!("missing {noun} {list} in `#[event(...)]`; every event sets `company`, `service`, `version`, `resource` and `action`, e.g. `{EXAMPLE}`"),
        );
        return None;
    }
    let (Some(company), Some(service), Some(resource), Some(action), Some(version)) = (
        &attrs.company,
        &attrs.service,
        &attrs.resource,
        &attrs.action,
        version,
    ) else {
        return None;
    };
    if !ok {
        return None;
    }
    let parts = [company, service, resource, action].map(LitStr::value);
    let full = rules::full_name(&parts[0], &parts[1], version, &parts[2], &parts[3]);
    if full.len() > MAX_NAME_LEN {
        // Point at the longest part: it is the one to shorten.
        let longest = [company, service, resource, action]
            .into_iter()
            .max_by_key(|l| l.value().len())
            .unwrap_or(company);
        cx.error_spanned_by(
            longest,
            format!(
                "the event name `{full}` is {} characters long; EventBridge allows at most {MAX_NAME_LEN} in a `DetailType`: shorten this part",
                full.len()
            ),
        );
        return None;
    }
    let [company, service, resource, action] = parts;
    Some(ValidName {
        company,
        service,
        version,
        resource,
        action,
        full,
    })
}
