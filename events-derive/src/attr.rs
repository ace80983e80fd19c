//! Parsing of `#[event(...)]` (on the struct and on its fields) and of
//! `#[handler(...)]`: the syntax only. A key that is unknown, repeated, or
//! whose value is not the right kind of literal is reported here; what the
//! values mean is checked in [`valid`](crate::valid).
//!
//! The keys are the constants of [`symbol`](crate::symbol).

use proc_macro2::{Span, TokenStream};
use syn::meta::ParseNestedMeta;
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, Lit, LitInt, LitStr};

use crate::ctxt::Ctxt;
use crate::symbol::{
    list, Symbol, ACTION, COMPANY, CONTAINER_KEYS, CRATE, DEFAULT, EVENT, FIELD_KEYS, HANDLER_KEYS,
    MESSAGE_TYPE, RENAME, RESOURCE, SERVICE, SKIP, UPCAST_FROM, VERSION,
};

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
    /// `upcast_from = OlderType`.
    pub upcast_from: Option<syn::Path>,
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

impl FieldDefault {
    /// Where it was written.
    pub fn span(&self) -> Span {
        match self {
            FieldDefault::Trait(span) => *span,
            FieldDefault::Path(path) => path.span(),
        }
    }
}

/// `#[handler(...)]`, as written.
#[derive(Default)]
pub struct HandlerAttrs {
    pub krate: Option<syn::Path>,
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

fn did_you_mean(key: &str, valid: &[Symbol]) -> String {
    valid
        .iter()
        .map(|k| (distance(key, k.as_str()), k.as_str()))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, k)| format!(" (did you mean `{k}`?)"))
        .unwrap_or_default()
}

fn unknown_key(key: &str, valid: &[Symbol]) -> String {
    format!(
        "unknown key `{key}` in `#[event(...)]`{}; valid keys are {}",
        did_you_mean(key, valid),
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
        content.parse::<TokenStream>()?;
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
    key: Symbol,
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
    key: Symbol,
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

/// `crate = "path"`: the path of `events_core`.
fn crate_path(cx: &mut Ctxt, meta: &ParseNestedMeta) -> syn::Result<Option<syn::Path>> {
    Ok(
        match string(cx, meta, CRATE, "crate = \"::events_core\"")? {
            Some(s) => match s.parse::<syn::Path>() {
                Ok(path) => Some(path),
                Err(_) => {
                    cx.error_spanned_by(
                        &s,
                        "`crate` must be a path, e.g. `crate = \"::events_core\"`",
                    );
                    None
                }
            },
            None => None,
        },
    )
}

/// `upcast_from = OlderType`: the path of a type (not a string).
fn upcast_from(cx: &mut Ctxt, meta: &ParseNestedMeta) -> syn::Result<Option<syn::Path>> {
    const EXAMPLE: &str = "upcast_from = CompanyCreatedV1";
    if !meta.input.peek(syn::Token![=]) {
        cx.error_spanned_by(
            &meta.path,
            format!("`upcast_from` expects the older event type, e.g. `{EXAMPLE}`"),
        );
        skip_value(meta)?;
        return Ok(None);
    }
    let expr: Expr = meta.value()?.parse()?;
    Ok(match expr {
        Expr::Path(path) if path.qself.is_none() => Some(path.path),
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => {
            cx.error_spanned_by(
                &s,
                format!(
                    "`upcast_from` names a type, not a string: write `upcast_from = {}`",
                    s.value().trim()
                ),
            );
            None
        }
        other => {
            cx.error_spanned_by(
                other,
                format!("`upcast_from` must be the path of the older event type, e.g. `{EXAMPLE}`"),
            );
            None
        }
    })
}

fn set<T>(slot: &mut Option<T>, value: Option<T>) {
    if value.is_some() {
        *slot = value;
    }
}

/// Records `key` and reports it (at this, its second occurrence) if seen
/// before.
fn duplicate(
    cx: &mut Ctxt,
    seen: &mut Vec<String>,
    meta: &ParseNestedMeta,
    key: &str,
    valid: &[Symbol],
    attribute: &str,
) -> bool {
    let dup = valid.iter().any(|k| key == k) && seen.iter().any(|k| k == key);
    seen.push(key.to_owned());
    if dup {
        cx.error_spanned_by(
            &meta.path,
            format!("duplicate key `{key}` in `{attribute}`; set it once"),
        );
    }
    dup
}

impl ContainerAttrs {
    /// Reads every `#[event(...)]` on the struct, collecting errors.
    pub fn from_attrs(cx: &mut Ctxt, attrs: &[syn::Attribute]) -> Self {
        let mut out = ContainerAttrs::default();
        let mut seen: Vec<String> = Vec::new();
        for attr in attrs.iter().filter(|a| *a.path() == EVENT) {
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
                if duplicate(cx, &mut seen, &meta, &key, CONTAINER_KEYS, "#[event(...)]") {
                    return skip_value(&meta);
                }
                if meta.path == COMPANY {
                    let v = string(cx, &meta, COMPANY, "company = \"acme\"")?;
                    set(&mut out.company, v);
                } else if meta.path == SERVICE {
                    let v = string(cx, &meta, SERVICE, "service = \"billing\"")?;
                    set(&mut out.service, v);
                } else if meta.path == RESOURCE {
                    let v = string(cx, &meta, RESOURCE, "resource = \"invoice\"")?;
                    set(&mut out.resource, v);
                } else if meta.path == ACTION {
                    let v = string(cx, &meta, ACTION, "action = \"paid\"")?;
                    set(&mut out.action, v);
                } else if meta.path == MESSAGE_TYPE {
                    let v = string(cx, &meta, MESSAGE_TYPE, "message_type = \"event\"")?;
                    set(&mut out.message_type, v);
                } else if meta.path == VERSION {
                    let v = match literal(cx, &meta, VERSION, "version = 1")? {
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
                            cx.error_spanned_by(
                                &other,
                                "`version` must be an integer literal, e.g. `version = 1`",
                            );
                            None
                        }
                        None => None,
                    };
                    set(&mut out.version, v);
                } else if meta.path == CRATE {
                    let v = crate_path(cx, &meta)?;
                    set(&mut out.krate, v);
                } else if meta.path == UPCAST_FROM {
                    let v = upcast_from(cx, &meta)?;
                    set(&mut out.upcast_from, v);
                } else {
                    cx.error_spanned_by(&meta.path, unknown_key(&key, CONTAINER_KEYS));
                    skip_value(&meta)?;
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
        for attr in attrs.iter().filter(|a| *a.path() == EVENT) {
            if let syn::Meta::Path(_) | syn::Meta::NameValue(_) = attr.meta {
                cx.error_spanned_by(
                    attr,
                    "expected `#[event(...)]` with field options, e.g. `#[event(rename = \"companyName\")]`",
                );
                continue;
            }
            let result = attr.parse_nested_meta(|meta| {
                let key = key_name(&meta);
                if duplicate(cx, &mut seen, &meta, &key, FIELD_KEYS, "#[event(...)]") {
                    return skip_value(&meta);
                }
                if meta.path == RENAME {
                    let v = string(cx, &meta, RENAME, "rename = \"companyName\"")?;
                    set(&mut out.rename, v);
                } else if meta.path == SKIP {
                    if meta.input.peek(syn::Token![=]) || meta.input.peek(syn::token::Paren) {
                        cx.error_spanned_by(
                            &meta.path,
                            "`skip` takes no value: write `#[event(skip)]`",
                        );
                        skip_value(&meta)?;
                    }
                    set(&mut out.skip, Some(meta.path.span()));
                } else if meta.path == DEFAULT {
                    let v = if meta.input.peek(syn::Token![=]) {
                        match string(cx, &meta, DEFAULT, "default = \"default_country\"")? {
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
                } else {
                    cx.error_spanned_by(&meta.path, unknown_key(&key, FIELD_KEYS));
                    skip_value(&meta)?;
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

impl HandlerAttrs {
    /// Reads the arguments of `#[handler(...)]`, collecting errors.
    pub fn from_args(cx: &mut Ctxt, args: TokenStream) -> Self {
        let mut out = HandlerAttrs::default();
        let mut seen: Vec<String> = Vec::new();
        let parser = syn::meta::parser(|meta| {
            let key = key_name(&meta);
            if duplicate(cx, &mut seen, &meta, &key, HANDLER_KEYS, "#[handler(...)]") {
                return skip_value(&meta);
            }
            if meta.path == CRATE {
                let v = crate_path(cx, &meta)?;
                set(&mut out.krate, v);
            } else {
                cx.error_spanned_by(
                    &meta.path,
                    format!(
                        "unknown key `{key}` in `#[handler(...)]`{}: a handler's name is its module path and \
                         function name; the one key is `crate = \"path\"`, the path of `events_core` if renamed",
                        did_you_mean(&key, HANDLER_KEYS)
                    ),
                );
                skip_value(&meta)?;
            }
            Ok(())
        });
        if let Err(e) = syn::parse::Parser::parse2(parser, args) {
            cx.syn_error(e);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn did_you_mean() {
        assert!(unknown_key("compnay", CONTAINER_KEYS).contains("did you mean `company`"));
        assert!(!unknown_key("topic", CONTAINER_KEYS).contains("did you mean"));
    }

    #[test]
    fn handler_args() {
        let mut cx = Ctxt::default();
        let attrs = HandlerAttrs::from_args(&mut cx, quote::quote!(crate = "my::events"));
        assert!(!cx.has_errors());
        let path = attrs.krate.map(|p| quote::quote!(#p).to_string());
        assert_eq!(path.as_deref(), Some("my :: events"));

        let mut cx = Ctxt::default();
        HandlerAttrs::from_args(&mut cx, quote::quote!(name = "x", crate = "a", crate = "b"));
        let messages = cx.messages();
        assert_eq!(messages.len(), 2, "{messages:?}");
        assert!(messages[0].starts_with("unknown key `name` in `#[handler(...)]`"));
        assert_eq!(
            messages[1],
            "duplicate key `crate` in `#[handler(...)]`; set it once"
        );
    }
}
