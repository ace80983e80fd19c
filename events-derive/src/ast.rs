//! The typed view of the macros' input, read from syn without judging it:
//! [`valid`](crate::valid) checks the rules on this view, and code
//! generation reads only this view. It keeps the user's tokens for spans.

use proc_macro2::Span;
use syn::{
    AngleBracketedGenericArguments, Data, DeriveInput, FieldsUnnamed, FnArg, GenericArgument,
    Generics, Ident, Item, ItemFn, ItemImpl, PatType, PathArguments, Receiver, Token, Type,
};

use crate::attr::{ContainerAttrs, FieldAttrs, HandlerAttrs};
use crate::ctxt::Ctxt;
use crate::serde_attr;

/// The path of `events_core` when no `crate = "..."` is given.
fn default_crate() -> syn::Path {
    syn::parse_quote!(::events_core)
}

/// One `#[derive(DomainEvent)]` input.
pub struct Input<'a> {
    pub ident: &'a Ident,
    pub generics: &'a Generics,
    pub attrs: ContainerAttrs,
    /// The path of `events_core` (`crate = "..."`, else `::events_core`).
    pub krate: syn::Path,
    pub body: Body<'a>,
}

/// What the derive was put on.
pub enum Body<'a> {
    /// `struct Name { field: Type }`.
    Named(Vec<Field<'a>>),
    /// `struct Name;`.
    Unit,
    /// `struct Name(Type);`.
    Tuple(&'a FieldsUnnamed),
    /// `enum Name { .. }`.
    Enum(Token![enum]),
    /// `union Name { .. }`.
    Union(Token![union]),
}

/// One named field of the struct.
pub struct Field<'a> {
    pub member: &'a Ident,
    pub ty: &'a Type,
    pub attrs: FieldAttrs,
    /// The attribute's key on the wire: `rename`, else the field's name.
    pub wire: String,
}

impl<'a> Input<'a> {
    /// Reads the input; attribute syntax errors go to `cx`.
    pub fn from_syn(cx: &mut Ctxt, input: &'a DeriveInput) -> Self {
        let attrs = ContainerAttrs::from_attrs(cx, &input.attrs);
        serde_attr::reject_on_container(cx, &input.attrs);
        let krate = attrs.krate.clone().unwrap_or_else(default_crate);
        let body = match &input.data {
            Data::Struct(data) => match &data.fields {
                syn::Fields::Named(named) => Body::Named(
                    named
                        .named
                        .iter()
                        .filter_map(|field| Field::from_syn(cx, field))
                        .collect(),
                ),
                syn::Fields::Unit => Body::Unit,
                syn::Fields::Unnamed(unnamed) => Body::Tuple(unnamed),
            },
            Data::Enum(data) => Body::Enum(data.enum_token),
            Data::Union(data) => Body::Union(data.union_token),
        };
        Input {
            ident: &input.ident,
            generics: &input.generics,
            attrs,
            krate,
            body,
        }
    }

    /// The named fields (none for any other shape).
    pub fn fields(&self) -> &[Field<'a>] {
        match &self.body {
            Body::Named(fields) => fields,
            _ => &[],
        }
    }

    /// Whether the type has generics (no impl can then be generated).
    pub fn is_generic(&self) -> bool {
        !self.generics.params.is_empty() || self.generics.where_clause.is_some()
    }
}

impl<'a> Field<'a> {
    fn from_syn(cx: &mut Ctxt, field: &'a syn::Field) -> Option<Self> {
        let attrs = FieldAttrs::from_attrs(cx, &field.attrs);
        serde_attr::reject_on_field(cx, &field.attrs);
        let member = field.ident.as_ref()?;
        let wire = attrs
            .rename
            .as_ref()
            .map(syn::LitStr::value)
            .unwrap_or_else(|| member.to_string().trim_start_matches("r#").to_owned());
        Some(Field {
            member,
            ty: &field.ty,
            attrs,
            wire,
        })
    }

    /// `#[event(skip)]`: not sent.
    pub fn skip(&self) -> bool {
        self.attrs.skip.is_some()
    }
}

/// One `#[handler]` input.
pub struct Handler<'a> {
    /// The path of `events_core` (`crate = "..."`, else `::events_core`).
    pub krate: syn::Path,
    pub item: HandlerItem<'a>,
}

/// What `#[handler]` was put on.
pub enum HandlerItem<'a> {
    Fn(FnHandler<'a>),
    Impl(ImplHandler<'a>),
    /// Any other item, with the span of its keyword.
    Other(Span),
}

/// `#[handler] async fn name(event: Arg) -> Output`.
pub struct FnHandler<'a> {
    pub item: &'a ItemFn,
    pub name: &'a Ident,
    pub receivers: Vec<&'a Receiver>,
    /// The typed arguments; the first is the event.
    pub args: Vec<&'a PatType>,
}

/// The event argument of a function handler.
pub struct EventArg<'a> {
    /// The type without its reference: `Event<E>` or `E`.
    pub inner: &'a Type,
    /// Taken by reference (`&Event<E>`, `&E`).
    pub by_ref: bool,
    /// The `mut` of `&mut`, which is not allowed.
    pub mutability: Option<Token![mut]>,
}

/// `#[handler] impl Handler<E> for T { .. }`.
pub struct ImplHandler<'a> {
    pub block: &'a ItemImpl,
    pub self_ty: &'a Type,
    pub trait_: ImplTrait<'a>,
}

/// The trait of a `#[handler]` impl block.
pub enum ImplTrait<'a> {
    /// `impl Handler<E> for T`.
    Handler(&'a Type),
    /// `impl Handler<..> for T` with something other than one type.
    HandlerWithoutEvent(&'a AngleBracketedGenericArguments),
    /// `impl Other for T`.
    Other(&'a syn::Path),
    /// `impl T` (no trait).
    Inherent,
}

impl<'a> Handler<'a> {
    /// Reads the input; attribute syntax errors go to `cx`.
    pub fn from_syn(cx: &mut Ctxt, args: proc_macro2::TokenStream, item: &'a Item) -> Self {
        let attrs = HandlerAttrs::from_args(cx, args);
        let krate = attrs.krate.unwrap_or_else(default_crate);
        let item = match item {
            Item::Fn(function) => HandlerItem::Fn(FnHandler::from_syn(function)),
            Item::Impl(block) => HandlerItem::Impl(ImplHandler::from_syn(block)),
            other => HandlerItem::Other(item_keyword(other)),
        };
        Handler { krate, item }
    }
}

impl<'a> FnHandler<'a> {
    fn from_syn(item: &'a ItemFn) -> Self {
        let mut receivers = Vec::new();
        let mut args = Vec::new();
        for input in &item.sig.inputs {
            match input {
                FnArg::Receiver(receiver) => receivers.push(receiver),
                FnArg::Typed(arg) => args.push(arg),
            }
        }
        FnHandler {
            item,
            name: &item.sig.ident,
            receivers,
            args,
        }
    }

    /// The event argument, if there is one.
    pub fn event(&self) -> Option<EventArg<'a>> {
        let ty = &*self.args.first()?.ty;
        Some(match ty {
            Type::Reference(reference) => EventArg {
                inner: &reference.elem,
                by_ref: true,
                mutability: reference.mutability,
            },
            other => EventArg {
                inner: other,
                by_ref: false,
                mutability: None,
            },
        })
    }
}

impl<'a> ImplHandler<'a> {
    fn from_syn(block: &'a ItemImpl) -> Self {
        let trait_ = match &block.trait_ {
            None => ImplTrait::Inherent,
            Some((_, path, _)) => match path.segments.last() {
                Some(last) if last.ident == "Handler" => match &last.arguments {
                    PathArguments::AngleBracketed(args) if args.args.len() == 1 => {
                        match args.args.first() {
                            Some(GenericArgument::Type(ty)) => ImplTrait::Handler(ty),
                            _ => ImplTrait::HandlerWithoutEvent(args),
                        }
                    }
                    _ => ImplTrait::Other(path),
                },
                _ => ImplTrait::Other(path),
            },
        };
        ImplHandler {
            block,
            self_ty: &block.self_ty,
            trait_,
        }
    }
}

fn item_keyword(item: &Item) -> Span {
    match item {
        Item::Struct(s) => s.struct_token.span,
        Item::Enum(e) => e.enum_token.span,
        Item::Trait(t) => t.trait_token.span,
        Item::Mod(m) => m.mod_token.span,
        Item::Static(s) => s.static_token.span,
        Item::Const(c) => c.const_token.span,
        Item::Type(t) => t.type_token.span,
        _ => Span::call_site(),
    }
}
