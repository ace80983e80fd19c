//! Every rule of the macros, checked on the typed view of
//! [`ast`](crate::ast) (as thiserror's `valid.rs`): the shape of an event
//! type, the SPEC §2 naming rules (shared with `events-core` through one
//! source file), the field options, and the form of a handler. Each broken
//! rule is reported at its narrowest token; nothing stops at the first.

use syn::LitStr;

use crate::ast::{Body, Field, FnHandler, Handler, HandlerItem, ImplHandler, ImplTrait, Input};
use crate::attr::{ContainerAttrs, EXAMPLE};
use crate::ctxt::Ctxt;
use crate::symbol::{ACTION, COMPANY, REQUIRED_KEYS, RESOURCE, SERVICE};

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
    /// `event` or `command`.
    pub message_type: &'static str,
    pub resource: String,
    pub action: String,
    pub full: String,
}

impl Input<'_> {
    /// Checks every rule of a `#[derive(DomainEvent)]` input, reporting each
    /// broken one; the name when all of its rules hold.
    pub fn validate(&self, cx: &mut Ctxt) -> Option<ValidName> {
        shape(cx, &self.body);
        if self.is_generic() {
            cx.error_spanned_by(
                self.generics,
                "`DomainEvent` cannot be derived for a generic struct: each event type has one fixed name; \
                 use concrete field types",
            );
        }
        for field in self.fields() {
            field_options(cx, field);
        }
        let name = name(cx, &self.attrs, self.ident);
        wire_names(cx, self.fields());
        name
    }
}

/// An event is a struct with named fields, or a unit struct.
fn shape(cx: &mut Ctxt, body: &Body) {
    match body {
        Body::Named(_) | Body::Unit => {}
        Body::Tuple(unnamed) => cx.error_spanned_by(
            unnamed,
            "`DomainEvent` needs named fields: attributes travel by name on the wire; \
             write `struct Name { field: Type }`, or `struct Name;` for an event without attributes",
        ),
        Body::Enum(token) => cx.error_spanned_by(
            token,
            "`DomainEvent` cannot be derived for an enum: an event is one fact with one name; \
             declare one struct per event, e.g. `struct InvoicePaid { .. }`",
        ),
        Body::Union(token) => cx.error_spanned_by(
            token,
            "`DomainEvent` cannot be derived for a union: declare the event as a struct with named fields",
        ),
    }
}

/// The options of one field agree with each other.
fn field_options(cx: &mut Ctxt, field: &Field) {
    let attrs = &field.attrs;
    if let Some(rename) = &attrs.rename {
        if rename.value().is_empty() {
            cx.error_spanned_by(
                rename,
                "`rename` must not be empty, e.g. `rename = \"companyName\"`",
            );
        }
    }
    if let (Some(_), Some(default)) = (attrs.skip, &attrs.default) {
        cx.error_at(
            default.span(),
            "`skip` already fills the field with `Default::default()`; remove `default`, or drop `skip` to send the field",
        );
    }
    if let (Some(_), Some(rename)) = (attrs.skip, &attrs.rename) {
        cx.error_spanned_by(
            rename,
            "a skipped field is not sent, so `rename` has no effect; remove one of them",
        );
    }
}

/// No two sent fields share a name on the wire; the second is reported.
fn wire_names(cx: &mut Ctxt, fields: &[Field]) {
    for (i, field) in fields.iter().enumerate() {
        if field.skip() {
            continue;
        }
        if let Some(first) = fields[..i]
            .iter()
            .find(|f| !f.skip() && f.wire == field.wire)
        {
            cx.error_spanned_by(
                field.member,
                format!(
                    "attribute name `{}` is already used by field `{}`; give one of them another `#[event(rename = \"...\")]`",
                    field.wire, first.member
                ),
            );
        }
    }
}

/// An example of a handler, shown in messages.
pub const HANDLER_EXAMPLE: &str =
    "#[handler] async fn send_welcome_email(event: &Event<CompanyCreated>) { .. }";

impl Handler<'_> {
    /// Checks every rule of a `#[handler]` input, reporting each broken one.
    pub fn validate(&self, cx: &mut Ctxt) {
        match &self.item {
            HandlerItem::Fn(function) => function.validate(cx),
            HandlerItem::Impl(block) => block.validate(cx),
            HandlerItem::Other(span) => cx.error_at(
                *span,
                format!("`#[handler]` goes on an `async fn` or on an `impl Handler<E> for T` block, e.g. `{HANDLER_EXAMPLE}`"),
            ),
        }
    }
}

impl FnHandler<'_> {
    fn validate(&self, cx: &mut Ctxt) {
        let sig = &self.item.sig;
        let name = self.name;
        if sig.asyncness.is_none() {
            cx.error_spanned_by(
                sig.fn_token,
                format!("a handler must be an `async fn`: write `async fn {name}(..)`"),
            );
        }
        if let Some(constness) = sig.constness {
            cx.error_spanned_by(constness, "a handler cannot be a `const fn`");
        }
        if let Some(unsafety) = sig.unsafety {
            cx.error_spanned_by(
                unsafety,
                "a handler cannot be an `unsafe fn`: the bus calls it for every event",
            );
        }
        if let Some(abi) = &sig.abi {
            cx.error_spanned_by(abi, "a handler cannot declare an `extern` ABI");
        }
        if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
            cx.error_spanned_by(
                &sig.generics,
                "a handler cannot be generic: it handles one concrete event type, e.g. `async fn on_created(event: &Event<CompanyCreated>)`",
            );
        }
        for receiver in &self.receivers {
            cx.error_spanned_by(
                receiver,
                "a `#[handler]` function cannot take `self`: put `#[handler]` on the `impl Handler<E> for T` block, \
                 or register a value with `EventBusBuilder::register_handler`",
            );
        }
        for extra in self.args.iter().skip(1) {
            cx.error_spanned_by(
                extra,
                "a handler takes exactly one argument, the event; for dependencies implement `Handler<E>` on \
                 a struct holding them and register it with `EventBusBuilder::register_handler`",
            );
        }
        if sig.inputs.is_empty() {
            cx.error_at(
                sig.paren_token.span.join(),
                format!("a handler takes the event it handles as its argument, e.g. `{HANDLER_EXAMPLE}`"),
            );
        }
        if let Some(variadic) = &sig.variadic {
            cx.error_spanned_by(variadic, "a handler cannot be variadic");
        }
        if let Some(mutability) = self.event().and_then(|event| event.mutability) {
            cx.error_spanned_by(
                mutability,
                "a handler gets the event by shared reference (`&`) or by value; events are not modified",
            );
        }
    }
}

impl ImplHandler<'_> {
    fn validate(&self, cx: &mut Ctxt) {
        let generics = &self.block.generics;
        match &self.trait_ {
            ImplTrait::Handler(_) => {}
            ImplTrait::Inherent => cx.error_spanned_by(
                self.self_ty,
                "`#[handler]` on an `impl` block needs a trait impl: `impl Handler<E> for T`",
            ),
            ImplTrait::HandlerWithoutEvent(args) => cx.error_spanned_by(
                args,
                "expected the event type: `impl Handler<CompanyCreated> for T`",
            ),
            ImplTrait::Other(path) => cx.error_spanned_by(
                path,
                "`#[handler]` on an `impl` block needs `impl Handler<E> for T`",
            ),
        }
        if !generics.params.is_empty() || generics.where_clause.is_some() {
            cx.error_spanned_by(
                generics,
                "a `#[handler]` impl cannot be generic: it is built once, with `Default`",
            );
        }
    }
}

fn check_part(cx: &mut Ctxt, key: &str, lit: &LitStr, command: bool) -> bool {
    let value = lit.value();
    let result = if key == ACTION.as_str() && command {
        rules::check_command_action(&value)
    } else if key == ACTION.as_str() {
        rules::check_action(&value)
    } else {
        rules::check_segment(&value)
    };
    match result {
        Ok(()) => true,
        Err(rules::PartError::PastTense(word)) => {
            let suggestion = rules::suggest_infinitive(&value);
            let suggestion = if suggestion.is_empty() {
                "send".to_owned()
            } else {
                suggestion
            };
            cx.error_spanned_by(
                lit,
                format!(
                    "the `action` of a command is an infinitive, what to do: `{word}` is in the past tense, \
                     the form that names the event after it; e.g. `action = \"{suggestion}\"`"
                ),
            );
            false
        }
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
            let suggestion = if key == ACTION.as_str() && command {
                rules::suggest_segment(&value)
            } else if key == ACTION.as_str() {
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
        .filter(|k| !attrs.written.iter().any(|w| *w == **k))
        .map(|k| format!("`{k}`"))
        .collect();
    let mut ok = true;
    let message_type = match &attrs.message_type {
        None => rules::MESSAGE_TYPE_EVENT,
        Some(mt) if mt.value() == rules::MESSAGE_TYPE_EVENT => rules::MESSAGE_TYPE_EVENT,
        Some(mt) if mt.value() == rules::MESSAGE_TYPE_COMMAND => rules::MESSAGE_TYPE_COMMAND,
        Some(mt) => {
            cx.error_spanned_by(
                mt,
                "`message_type` is `event` (a domain event: the default, leave it out) or `command` \
                 (a command, whose `action` is an infinitive): e.g. `message_type = \"command\"`",
            );
            ok = false;
            rules::MESSAGE_TYPE_EVENT
        }
    };
    let command = message_type == rules::MESSAGE_TYPE_COMMAND;
    // Which rule the action follows depends on a valid message type.
    let check_action = ok;
    for (key, lit) in [
        (COMPANY, &attrs.company),
        (SERVICE, &attrs.service),
        (RESOURCE, &attrs.resource),
        (ACTION, &attrs.action),
    ] {
        if key == ACTION && !check_action {
            continue;
        }
        if let Some(lit) = lit {
            ok &= check_part(cx, key.as_str(), lit, command);
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
    let full = rules::full_message_name(
        &parts[0],
        &parts[1],
        version,
        message_type,
        &parts[2],
        &parts[3],
    );
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
        message_type,
        resource,
        action,
        full,
    })
}

#[cfg(test)]
mod tests {
    use syn::parse_quote;

    use super::*;

    fn event_errors(input: syn::DeriveInput) -> Vec<String> {
        let mut cx = Ctxt::default();
        let ast = Input::from_syn(&mut cx, &input);
        let name = ast.validate(&mut cx);
        assert!(name.is_none() || cx.has_errors());
        cx.messages()
    }

    fn handler_errors(item: syn::Item) -> Vec<String> {
        let mut cx = Ctxt::default();
        let handler = Handler::from_syn(&mut cx, proc_macro2::TokenStream::new(), &item);
        handler.validate(&mut cx);
        cx.messages()
    }

    #[test]
    fn past_tense_suggestions_are_words() {
        for (action, expected) in [
            ("sends", "sent"),
            ("email_sends", "email_sent"),
            ("creates", "created"),
            ("pays", "paid"),
            ("applies", "applied"),
            ("pushes", "pushed"),
            ("fixes", "fixed"),
            ("goes", "gone"),
            ("uses", "used"),
            ("process", "processed"),
            ("focus", "focused"),
            ("send", "sent"),
            ("create", "created"),
            ("apply", "applied"),
            ("place", "placed"),
        ] {
            assert_eq!(rules::suggest_action(action), expected, "for `{action}`");
        }
    }

    #[test]
    fn the_suggestion_for_sends_is_in_the_error() {
        let errors = event_errors(parse_quote! {
            #[event(company = "acme", service = "shop", version = 1, resource = "order", action = "sends")]
            struct F { x: u32 }
        });
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].ends_with("e.g. `action = \"sent\"`"),
            "{errors:?}"
        );
    }

    #[test]
    fn a_valid_event_has_its_name() {
        let input: syn::DeriveInput = parse_quote! {
            #[event(company = "acme", service = "billing", version = 2, resource = "invoice", action = "paid")]
            struct InvoicePaid { #[event(rename = "amountCents")] amount: u64 }
        };
        let mut cx = Ctxt::default();
        let ast = Input::from_syn(&mut cx, &input);
        let name = ast.validate(&mut cx).map(|n| n.full);
        assert!(!cx.has_errors(), "{:?}", cx.messages());
        assert_eq!(name.as_deref(), Some("acme.billing.2.event.invoice.paid"));
        assert_eq!(ast.fields()[0].wire, "amountCents");
    }

    #[test]
    fn every_event_rule_is_reported_at_once() {
        let errors = event_errors(parse_quote! {
            #[event(company = "Acme", service = "billing", version = 0, resource = "invoice", action = "pay")]
            struct InvoicePaid<T> {
                #[event(skip, default)]
                a: T,
                #[event(rename = "")]
                b: u8,
                #[event(rename = "c")]
                d: u8,
                c: u8,
            }
        });
        let expected = [
            "a generic struct",
            "`skip` already fills the field",
            "`rename` must not be empty",
            "`company` must match",
            "`action` must be in the past tense",
            "`version` must be an integer from 1",
            "attribute name `c` is already used by field `d`",
        ];
        assert_eq!(errors.len(), expected.len(), "{errors:#?}");
        for (error, expected) in errors.iter().zip(expected) {
            assert!(
                error.contains(expected),
                "`{error}` should say `{expected}`"
            );
        }
    }

    #[test]
    fn shapes_other_than_a_struct_with_named_fields_are_refused() {
        for (input, expected) in [
            (
                parse_quote!(
                    struct A(u8);
                ),
                "needs named fields",
            ),
            (
                parse_quote!(
                    enum A {
                        B,
                    }
                ),
                "cannot be derived for an enum",
            ),
            (
                parse_quote!(union A { b: u8 }),
                "cannot be derived for a union",
            ),
        ] {
            let errors = event_errors(input);
            assert!(errors[0].contains(expected), "{errors:?}");
            assert!(errors[1].starts_with("missing `#[event(...)]` attribute"));
        }
    }

    #[test]
    fn missing_keys_are_one_error() {
        let errors = event_errors(parse_quote! {
            #[event(company = "acme", service = "billing")]
            struct InvoicePaid;
        });
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0]
            .starts_with("missing keys `version`, `resource`, `action` in `#[event(...)]`"));
    }

    #[test]
    fn every_handler_rule_is_reported_at_once() {
        // The `&mut` is reported with the other errors, not hidden by them.
        let errors = handler_errors(parse_quote! {
            const unsafe fn on<T>(event: &mut Event<CompanyCreated>, extra: u32) {}
        });
        let expected = [
            "a handler must be an `async fn`: write `async fn on(..)`",
            "a handler cannot be a `const fn`",
            "a handler cannot be an `unsafe fn`",
            "a handler cannot be generic",
            "a handler takes exactly one argument",
            "a handler gets the event by shared reference",
        ];
        assert_eq!(errors.len(), expected.len(), "{errors:#?}");
        for (error, expected) in errors.iter().zip(expected) {
            assert!(
                error.starts_with(expected),
                "`{error}` should start with `{expected}`"
            );
        }
    }

    #[test]
    fn handler_impl_rules() {
        assert!(
            handler_errors(parse_quote!(impl Handler<CompanyCreated> for Mailer {})).is_empty()
        );
        let errors = handler_errors(parse_quote!(
            impl<T> Other for Mailer<T> {}
        ));
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].contains("needs `impl Handler<E> for T`"));
        assert!(errors[1].contains("cannot be generic"));
        let errors = handler_errors(parse_quote!(impl Mailer {}));
        assert!(errors[0].contains("needs a trait impl"), "{errors:?}");
        let errors = handler_errors(parse_quote!(
            struct Mailer;
        ));
        assert!(
            errors[0].starts_with("`#[handler]` goes on an `async fn`"),
            "{errors:?}"
        );
    }
}
