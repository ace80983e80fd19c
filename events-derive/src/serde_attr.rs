//! `#[serde(...)]` on an event: refused. The derive writes and reads the
//! event's attributes itself, so serde's options would be ignored on the
//! wire without a word (a `#[serde(skip)]` secret would be sent). Each
//! `#[serde(...)]` is one error at the attribute, naming the
//! `#[event(...)]` option that does the same where there is one.

use syn::Expr;

use crate::ctxt::Ctxt;

/// The `#[event(...)]` field options, listed in every message.
const FIELD_OPTIONS: &str =
    "`#[event(rename = \"...\")]`, `#[event(skip)]` and `#[event(default)]`";

/// The keys of one `#[serde(...)]`, each with its value as written; empty
/// when the attribute is not of the `#[serde(key, key = value)]` form.
fn serde_keys(attr: &syn::Attribute) -> Vec<(String, Option<String>)> {
    let mut keys = Vec::new();
    let parsed = attr.parse_nested_meta(|meta| {
        let path = &meta.path;
        let key = quote::quote!(#path).to_string().replace(' ', "");
        let value = if meta.input.peek(syn::Token![=]) {
            let expr: Expr = meta.value()?.parse()?;
            Some(quote::quote!(#expr).to_string())
        } else {
            if meta.input.peek(syn::token::Paren) {
                let content;
                syn::parenthesized!(content in meta.input);
                content.parse::<proc_macro2::TokenStream>()?;
            }
            None
        };
        keys.push((key, value));
        Ok(())
    });
    if parsed.is_err() {
        keys.clear();
    }
    keys
}

fn serde_attrs(attrs: &[syn::Attribute]) -> impl Iterator<Item = &syn::Attribute> {
    attrs.iter().filter(|a| a.path().is_ident("serde"))
}

/// Reports every `#[serde(...)]` on one field of an event.
pub fn reject_on_field(cx: &mut Ctxt, attrs: &[syn::Attribute]) {
    for attr in serde_attrs(attrs) {
        let mut equivalent: Vec<String> = Vec::new();
        let mut unsupported: Vec<String> = Vec::new();
        for (key, value) in serde_keys(attr) {
            let option = match (key.as_str(), value) {
                ("rename", Some(v)) => format!("rename = {v}"),
                ("skip" | "skip_serializing" | "skip_deserializing", _) => "skip".to_owned(),
                ("default", None) => "default".to_owned(),
                ("default", Some(v)) => format!("default = {v}"),
                (other, _) => {
                    unsupported.push(format!("`{other}`"));
                    continue;
                }
            };
            if !equivalent.contains(&option) {
                equivalent.push(option);
            }
        }
        let mut message = String::from(
            "`#[serde(...)]` on an event's field is not used: the event's attributes are written \
             and read by the `DomainEvent` derive, which does not read `#[serde(...)]` on fields",
        );
        if !equivalent.is_empty() {
            message.push_str(&format!(
                "; write `#[event({})]` instead",
                equivalent.join(", ")
            ));
        }
        if !unsupported.is_empty() {
            message.push_str(&format!(
                "; {} {} no `#[event(...)]` equivalent",
                unsupported.join(", "),
                if unsupported.len() == 1 {
                    "has"
                } else {
                    "have"
                }
            ));
        }
        message.push_str(&format!(" (the field options are {FIELD_OPTIONS})"));
        cx.error_spanned_by(&attr.meta, message);
    }
}

/// What to write instead of one key of `#[serde(...)]` on the struct.
fn container_hint(key: &str) -> String {
    match key {
        "rename_all" => {
            "for `rename_all`, rename each field with `#[event(rename = \"...\")]`".to_owned()
        }
        "default" => "for `default`, put `#[event(default)]` on each field".to_owned(),
        "deny_unknown_fields" => "`deny_unknown_fields` has no equivalent: an event ignores \
                                  attributes it does not know, so producers can add attributes \
                                  without breaking readers"
            .to_owned(),
        "rename" => "for `rename`, the event's name is set by `#[event(company = ..., \
                     service = ..., version = ..., resource = ..., action = ...)]`"
            .to_owned(),
        "tag" | "content" | "untagged" => {
            format!("`{key}` has no equivalent: an event's attributes are always one JSON object")
        }
        other => format!("`{other}` has no `#[event(...)]` equivalent"),
    }
}

/// Reports every `#[serde(...)]` on an event struct.
pub fn reject_on_container(cx: &mut Ctxt, attrs: &[syn::Attribute]) {
    for attr in serde_attrs(attrs) {
        let mut message = String::from(
            "`#[serde(...)]` on an event struct is not used: the event's attributes are written \
             and read by the `DomainEvent` derive, which does not read `#[serde(...)]`",
        );
        for (key, _) in serde_keys(attr) {
            message.push_str("; ");
            message.push_str(&container_hint(&key));
        }
        message.push_str(&format!(" (the field options are {FIELD_OPTIONS})"));
        cx.error_spanned_by(&attr.meta, message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_messages(field: syn::Field) -> Vec<String> {
        let mut cx = Ctxt::default();
        reject_on_field(&mut cx, &field.attrs);
        cx.messages()
    }

    #[test]
    fn a_serde_field_option_names_its_event_equivalent() {
        let messages = field_messages(syn::parse_quote! {
            #[serde(rename = "userId", default)]
            user_id: String
        });
        assert_eq!(messages.len(), 1);
        assert!(
            messages[0].contains("write `#[event(rename = \"userId\", default)]` instead"),
            "{messages:?}"
        );
    }

    #[test]
    fn skip_variants_and_unknown_keys() {
        let messages = field_messages(syn::parse_quote! {
            #[serde(skip_serializing, flatten)]
            secret: String
        });
        assert!(
            messages[0].contains("`#[event(skip)]` instead"),
            "{messages:?}"
        );
        assert!(
            messages[0].contains("`flatten` has no `#[event(...)]` equivalent"),
            "{messages:?}"
        );
    }

    #[test]
    fn fields_without_serde_are_accepted() {
        let messages = field_messages(syn::parse_quote! {
            #[event(skip)]
            #[doc = "x"]
            secret: String
        });
        assert!(messages.is_empty(), "{messages:?}");
    }

    #[test]
    fn container_keys_get_their_alternative() {
        let input: syn::DeriveInput = syn::parse_quote! {
            #[serde(rename_all = "camelCase", deny_unknown_fields)]
            struct E { a: u32 }
        };
        let mut cx = Ctxt::default();
        reject_on_container(&mut cx, &input.attrs);
        let messages = cx.messages();
        assert_eq!(messages.len(), 1);
        assert!(messages[0].contains("for `rename_all`, rename each field"));
        assert!(messages[0].contains("`deny_unknown_fields` has no equivalent"));
    }
}
