//! Parsing of `#[event(...)]` on the struct and on its fields.
//!
//! The accepted keys live in [`CONTAINER_KEYS`] and [`FIELD_KEYS`]; every
//! message that lists valid keys reads them from there.

use proc_macro2::Span;
use syn::meta::ParseNestedMeta;
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, Lit, LitInt, LitStr};

use crate::ctxt::Ctxt;

/// Keys of `#[event(...)]` on a struct.
pub const CONTAINER_KEYS: &[&str] = &[
    "company",
    "service",
    "version",
    "resource",
    "action",
    "message_type",
    "crate",
];

/// Keys that every event must set.
pub const REQUIRED_KEYS: &[&str] = &["company", "service", "version", "resource", "action"];

/// Keys of `#[event(...)]` on a field.
pub const FIELD_KEYS: &[&str] = &["rename", "skip", "default"];

/// An example of a complete attribute, shown in messages.
pub const EXAMPLE: &str =
    "#[event(company = \"acme\", service = \"billing\", version = 1, resource = \"invoice\", action = \"paid\")]";

/// `#[event(...)]` on the struct, as written.
#[derive(Default)]
pub struct ContainerAttrs {
    /// Span of the first `event` path, for errors about the whole attribute.
    pub attr_span: Option<Span>,
    pub company: Option<LitStr>,
    pub service: Option<LitStr>,
    pub version: Option<LitInt>,
    pub resource: Option<LitStr>,
    pub action: Option<LitStr>,
    pub message_type: Option<LitStr>,
    pub krate: Option<syn::Path>,
    /// Every key written (valid or not), so an invalid value is not also
    /// reported as missing.
    pub written: Vec<String>,
    /// An `#[event]` of the wrong form was reported already.
    pub malformed: bool,
}

/// `#[event(...)]` on a field, as written.
#[derive(Default)]
pub struct FieldAttrs {
    pub rename: Option<LitStr>,
    pub skip: Option<Span>,
    pub default: Option<FieldDefault>,
}

/// How a missing attribute is filled.
pub enum FieldDefault {
    /// `default`: `Default::default()`.
    Trait(Span),
    /// `default = "path::to::fn"`.
    Path(syn::ExprPath),
}

fn list(keys: &[&str]) -> String {
    keys.iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Edit distance, for "did you mean" hints.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(row[j]).min(row[j + 1])
            };
            prev = cur;
        }
    }
    row[b.len()]
}

fn unknown_key(key: &str, valid: &[&str]) -> String {
    let hint = valid
        .iter()
        .map(|k| (distance(key, k), k))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, k)| format!(" (did you mean `{k}`?)"))
        .unwrap_or_default();
    format!(
        "unknown key `{key}` in `#[event(...)]`{hint}; valid keys are {}",
        list(valid)
    )
}

/// Skips the value of an unknown or broken key so parsing can go on.
fn skip_value(meta: &ParseNestedMeta) -> syn::Result<()> {
    if meta.input.peek(syn::Token![=]) {
        meta.value()?.parse::<Expr>()?;
    } else if meta.input.peek(syn::token::Paren) {
        let content;
        syn::parenthesized!(content in meta.input);
        content.parse::<proc_macro2::TokenStream>()?;
    }
    Ok(())
}

fn key_name(meta: &ParseNestedMeta) -> String {
    meta.path
        .get_ident()
        .map(|i| i.to_string())
        .unwrap_or_else(|| {
            let path = &meta.path;
            quote::quote!(#path).to_string().replace(' ', "")
        })
}

/// Reads `= <literal>` after a key; `None` (with an error recorded) if absent
/// or not a literal.
fn literal(
    cx: &mut Ctxt,
    meta: &ParseNestedMeta,
    key: &str,
    example: &str,
) -> syn::Result<Option<Lit>> {
    if !meta.input.peek(syn::Token![=]) {
        cx.error_spanned_by(
            &meta.path,
            format!("`{key}` expects a value, e.g. `{example}`"),
        );
        skip_value(meta)?;
        return Ok(None);
    }
    let expr: Expr = meta.value()?.parse()?;
    match expr {
        Expr::Lit(ExprLit { lit, .. }) => Ok(Some(lit)),
        Expr::Group(group) => match *group.expr {
            Expr::Lit(ExprLit { lit, .. }) => Ok(Some(lit)),
            other => {
                cx.error_spanned_by(
                    other,
                    format!("`{key}` must be a literal, e.g. `{example}`"),
                );
                Ok(None)
            }
        },
        other => {
            cx.error_spanned_by(
                other,
                format!("`{key}` must be a literal, not an expression (the name is checked at compile time), e.g. `{example}`"),
            );
            Ok(None)
        }
    }
}

fn string(
    cx: &mut Ctxt,
    meta: &ParseNestedMeta,
    key: &str,
    example: &str,
) -> syn::Result<Option<LitStr>> {
    Ok(match literal(cx, meta, key, example)? {
        Some(Lit::Str(s)) => Some(s),
        Some(Lit::Int(i)) => {
            cx.error_spanned_by(
                &i,
                format!("`{key}` must be a string literal, not an integer, e.g. `{example}`"),
            );
            None
        }
        Some(other) => {
            cx.error_spanned_by(
                &other,
                format!("`{key}` must be a string literal, e.g. `{example}`"),
            );
            None
        }
        None => None,
    })
}

fn set<T>(slot: &mut Option<T>, value: Option<T>) {
    if value.is_some() {
        *slot = value;
    }
}

/// Records `key` and reports it (at this, its second occurrence) if seen before.
fn duplicate(
    cx: &mut Ctxt,
    seen: &mut Vec<String>,
    meta: &ParseNestedMeta,
    key: &str,
    valid: &[&str],
) -> bool {
    let dup = valid.contains(&key) && seen.iter().any(|k| k == key);
    seen.push(key.to_owned());
    if dup {
        cx.error_spanned_by(
            &meta.path,
            format!("duplicate key `{key}` in `#[event(...)]`; set it once"),
        );
    }
    dup
}

impl ContainerAttrs {
    /// Reads every `#[event(...)]` on the struct, collecting errors.
    pub fn from_attrs(cx: &mut Ctxt, attrs: &[syn::Attribute]) -> Self {
        let mut out = ContainerAttrs::default();
        let mut seen: Vec<String> = Vec::new();
        for attr in attrs.iter().filter(|a| a.path().is_ident("event")) {
            out.attr_span.get_or_insert(attr.path().span());
            if let syn::Meta::Path(_) | syn::Meta::NameValue(_) = attr.meta {
                cx.error_spanned_by(
                    attr,
                    format!("expected `#[event(...)]` with the name parts, e.g. `{EXAMPLE}`"),
                );
                continue;
            }
            let result = attr.parse_nested_meta(|meta| {
                let key = key_name(&meta);
                if duplicate(cx, &mut seen, &meta, &key, CONTAINER_KEYS) {
                    return skip_value(&meta);
                }
                match key.as_str() {
                    "company" => {
                        let v = string(cx, &meta, "company", "company = \"acme\"")?;
                        set(&mut out.company, v);
                    }
                    "service" => {
                        let v = string(cx, &meta, "service", "service = \"billing\"")?;
                        set(&mut out.service, v);
                    }
                    "resource" => {
                        let v = string(cx, &meta, "resource", "resource = \"invoice\"")?;
                        set(&mut out.resource, v);
                    }
                    "action" => {
                        let v = string(cx, &meta, "action", "action = \"paid\"")?;
                        set(&mut out.action, v);
                    }
                    "message_type" => {
                        let v = string(cx, &meta, "message_type", "message_type = \"event\"")?;
                        set(&mut out.message_type, v);
                    }
                    "version" => {
                        let v = match literal(cx, &meta, "version", "version = 1")? {
                            Some(Lit::Int(i)) => Some(i),
                            Some(Lit::Str(s)) => {
                                cx.error_spanned_by(
                                    &s,
                                    format!(
                                        "`version` must be an integer literal, not a string: write `version = {}`",
                                        s.value().trim().parse::<u32>().unwrap_or(1)
                                    ),
                                );
                                None
                            }
                            Some(other) => {
                                cx.error_spanned_by(&other, "`version` must be an integer literal, e.g. `version = 1`");
                                None
                            }
                            None => None,
                        };
                        set(&mut out.version, v);
                    }
                    "crate" => {
                        let v = match string(cx, &meta, "crate", "crate = \"::events_core\"")? {
                            Some(s) => match s.parse::<syn::Path>() {
                                Ok(path) => Some(path),
                                Err(_) => {
                                    cx.error_spanned_by(&s, "`crate` must be a path, e.g. `crate = \"::events_core\"`");
                                    None
                                }
                            },
                            None => None,
                        };
                        set(&mut out.krate, v);
                    }
                    _ => {
                        cx.error_spanned_by(&meta.path, unknown_key(&key, CONTAINER_KEYS));
                        skip_value(&meta)?;
                    }
                }
                Ok(())
            });
            if let Err(e) = result {
                cx.syn_error(e);
                out.malformed = true;
            }
        }
        out.written = seen;
        out
    }
}

impl FieldAttrs {
    /// Reads every `#[event(...)]` on one field, collecting errors.
    pub fn from_attrs(cx: &mut Ctxt, attrs: &[syn::Attribute]) -> Self {
        let mut out = FieldAttrs::default();
        let mut seen: Vec<String> = Vec::new();
        for attr in attrs.iter().filter(|a| a.path().is_ident("event")) {
            if let syn::Meta::Path(_) | syn::Meta::NameValue(_) = attr.meta {
                cx.error_spanned_by(attr, "expected `#[event(...)]` with field options, e.g. `#[event(rename = \"companyName\")]`");
                continue;
            }
            let result = attr.parse_nested_meta(|meta| {
                let key = key_name(&meta);
                if duplicate(cx, &mut seen, &meta, &key, FIELD_KEYS) {
                    return skip_value(&meta);
                }
                match key.as_str() {
                    "rename" => {
                        let v = string(cx, &meta, "rename", "rename = \"companyName\"")?;
                        if let Some(s) = &v {
                            if s.value().is_empty() {
                                cx.error_spanned_by(s, "`rename` must not be empty, e.g. `rename = \"companyName\"`");
                            }
                        }
                        set(&mut out.rename, v);
                    }
                    "skip" => {
                        if meta.input.peek(syn::Token![=]) || meta.input.peek(syn::token::Paren) {
                            cx.error_spanned_by(&meta.path, "`skip` takes no value: write `#[event(skip)]`");
                            skip_value(&meta)?;
                        }
                        set(&mut out.skip, Some(meta.path.span()));
                    }
                    "default" => {
                        let v = if meta.input.peek(syn::Token![=]) {
                            match string(cx, &meta, "default", "default = \"default_country\"")? {
                                Some(s) => match s.parse::<syn::ExprPath>() {
                                    Ok(path) => Some(FieldDefault::Path(path)),
                                    Err(_) => {
                                        cx.error_spanned_by(
                                            &s,
                                            "`default` must name a function, e.g. `default = \"default_country\"`",
                                        );
                                        None
                                    }
                                },
                                None => None,
                            }
                        } else {
                            Some(FieldDefault::Trait(meta.path.span()))
                        };
                        set(&mut out.default, v);
                    }
                    _ => {
                        cx.error_spanned_by(&meta.path, unknown_key(&key, FIELD_KEYS));
                        skip_value(&meta)?;
                    }
                }
                Ok(())
            });
            if let Err(e) = result {
                cx.syn_error(e);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn did_you_mean() {
        assert!(
            super::unknown_key("compnay", super::CONTAINER_KEYS).contains("did you mean `company`")
        );
        assert!(!super::unknown_key("topic", super::CONTAINER_KEYS).contains("did you mean"));
    }
}
