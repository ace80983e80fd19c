//! The typed view of a `#[derive(DomainEvent)]` input. Code generation reads
//! only this; it keeps the user's tokens for spans.

use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields, Ident, Type};

use crate::attr::{ContainerAttrs, FieldAttrs, FieldDefault};
use crate::ctxt::Ctxt;
use crate::valid::{self, ValidName};

/// One event struct.
pub struct Input<'a> {
    pub ident: &'a Ident,
    pub krate: syn::Path,
    /// `None` when a rule failed: a fallback impl is generated instead.
    pub name: Option<ValidName>,
    pub fields: Vec<Field<'a>>,
    pub unit: bool,
}

/// One field of the struct.
pub struct Field<'a> {
    pub member: &'a Ident,
    pub ty: &'a Type,
    /// The attribute's key on the wire.
    pub wire: String,
    pub skip: bool,
    pub default: Option<FieldDefault>,
}

impl<'a> Input<'a> {
    /// Reads and checks the input, collecting every error.
    pub fn from_syn(cx: &mut Ctxt, input: &'a DeriveInput) -> Self {
        let attrs = ContainerAttrs::from_attrs(cx, &input.attrs);
        let krate = attrs
            .krate
            .clone()
            .unwrap_or_else(|| syn::parse_quote!(::events_core));
        let mut unit = false;
        let mut fields = Vec::new();
        match &input.data {
            Data::Struct(data) => match &data.fields {
                Fields::Named(named) => {
                    for field in &named.named {
                        if let Some(f) = Field::from_syn(cx, field) {
                            fields.push(f);
                        }
                    }
                }
                Fields::Unit => unit = true,
                Fields::Unnamed(unnamed) => cx.error_spanned_by(
                    unnamed,
                    "`DomainEvent` needs named fields: attributes travel by name on the wire; \
                     write `struct Name { field: Type }`, or `struct Name;` for an event without attributes",
                ),
            },
            Data::Enum(data) => cx.error_spanned_by(
                data.enum_token,
                "`DomainEvent` cannot be derived for an enum: an event is one fact with one name; \
                 declare one struct per event, e.g. `struct InvoicePaid { .. }`",
            ),
            Data::Union(data) => cx.error_spanned_by(
                data.union_token,
                "`DomainEvent` cannot be derived for a union: declare the event as a struct with named fields",
            ),
        }
        if !input.generics.params.is_empty() || input.generics.where_clause.is_some() {
            cx.error_spanned_by(
                &input.generics,
                "`DomainEvent` cannot be derived for a generic struct: each event type has one fixed name; \
                 use concrete field types",
            );
        }
        let name = valid::name(cx, &attrs, &input.ident);
        check_wire_names(cx, &fields);
        Input {
            ident: &input.ident,
            krate,
            name,
            fields,
            unit,
        }
    }
}

impl<'a> Field<'a> {
    fn from_syn(cx: &mut Ctxt, field: &'a syn::Field) -> Option<Self> {
        let attrs = FieldAttrs::from_attrs(cx, &field.attrs);
        let member = field.ident.as_ref()?;
        if let (Some(skip), Some(default)) = (attrs.skip, &attrs.default) {
            let span = match default {
                FieldDefault::Trait(span) => *span,
                FieldDefault::Path(path) => path.span(),
            };
            let _ = skip;
            cx.error_at(
                span,
                "`skip` already fills the field with `Default::default()`; remove `default`, or drop `skip` to send the field",
            );
        }
        if let (Some(_), Some(rename)) = (attrs.skip, &attrs.rename) {
            cx.error_spanned_by(
                rename,
                "a skipped field is not sent, so `rename` has no effect; remove one of them",
            );
        }
        let wire = attrs
            .rename
            .as_ref()
            .map(syn::LitStr::value)
            .unwrap_or_else(|| member.to_string().trim_start_matches("r#").to_owned());
        Some(Field {
            member,
            ty: &field.ty,
            wire,
            skip: attrs.skip.is_some(),
            default: attrs.default,
        })
    }
}

fn check_wire_names(cx: &mut Ctxt, fields: &[Field]) {
    for (i, field) in fields.iter().enumerate() {
        if field.skip {
            continue;
        }
        if let Some(first) = fields[..i].iter().find(|f| !f.skip && f.wire == field.wire) {
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
