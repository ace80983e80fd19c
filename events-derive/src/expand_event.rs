//! Code generation for `#[derive(DomainEvent)]`, from the typed view only.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::DeriveInput;

use crate::ast::{Field, Input};
use crate::attr::FieldDefault;
use crate::ctxt::Ctxt;

/// The derive's entry point: the impl, or the errors plus a fallback impl so
/// one mistake does not cascade into "not a domain event" errors elsewhere.
pub fn derive(input: &DeriveInput) -> TokenStream {
    let mut cx = Ctxt::default();
    let ast = Input::from_syn(&mut cx, input);
    if cx.has_errors() {
        let errors = cx.into_compile_errors();
        let fallback = if input.generics.params.is_empty() {
            fallback(&ast)
        } else {
            TokenStream::new()
        };
        return quote!(#errors #fallback);
    }
    match &ast.name {
        Some(_) => expand(&ast),
        None => fallback(&ast),
    }
}

fn wrap(body: TokenStream) -> TokenStream {
    quote! {
        #[doc(hidden)]
        #[allow(non_upper_case_globals, unused_attributes, unused_qualifications, clippy::absolute_paths)]
        const _: () = {
            #body
        };
    }
}

fn expand(input: &Input) -> TokenStream {
    let Some(name) = &input.name else {
        return fallback(input);
    };
    let ident = input.ident;
    let krate = &input.krate;
    let private = quote!(#krate::__private);
    let full = &name.full;
    let (company, service, version, resource, action) = (
        &name.company,
        &name.service,
        name.version,
        &name.resource,
        &name.action,
    );

    let sent: Vec<&Field> = input.fields.iter().filter(|f| !f.skip).collect();
    let len = sent.len();
    let entries = sent.iter().map(|f| {
        let member = f.member;
        let wire = &f.wire;
        quote_spanned! {f.ty.span()=>
            #private::serde::ser::SerializeMap::serialize_entry(&mut __events_map, #wire, &self.#member)?;
        }
    });
    let body = if input.unit {
        quote!(::core::result::Result::Ok(Self))
    } else {
        let inits = input.fields.iter().map(|f| field_init(f, krate, &private));
        quote!(::core::result::Result::Ok(Self { #(#inits,)* }))
    };
    let map_arg = if input.fields.is_empty() {
        quote!(_)
    } else {
        quote!(__events_attributes)
    };

    wrap(quote! {
        #[automatically_derived]
        impl #krate::DomainEvent for #ident {
            const EVENT_NAME: &'static str = #full;
            const NAME: #krate::EventName<'static> = #krate::EventName {
                company: #company,
                service: #service,
                version: #version,
                resource: #resource,
                action: #action,
            };

            fn serialize_attributes<__S>(&self, __events_serializer: __S) -> ::core::result::Result<__S::Ok, __S::Error>
            where
                __S: #private::serde::Serializer,
            {
                let mut __events_map = #private::serde::Serializer::serialize_map(
                    __events_serializer,
                    ::core::option::Option::Some(#len),
                )?;
                #(#entries)*
                #private::serde::ser::SerializeMap::end(__events_map)
            }

            fn from_attributes<__A>(#map_arg: &__A) -> ::core::result::Result<Self, #krate::DecodeError>
            where
                __A: #private::AttributeSource + ?::core::marker::Sized,
            {
                #body
            }
        }

        #private::inventory::submit! {
            #private::EventType::of::<#ident>()
        }
    })
}

fn field_init(field: &Field, krate: &syn::Path, private: &TokenStream) -> TokenStream {
    let member = field.member;
    let ty = field.ty;
    let wire = &field.wire;
    let event = quote!(<Self as #krate::DomainEvent>::EVENT_NAME);
    if field.skip {
        return quote_spanned!(ty.span()=> #member: ::core::default::Default::default());
    }
    match &field.default {
        None => quote_spanned! {ty.span()=>
            #member: #private::field::<#ty, __A>(__events_attributes, #event, #wire)?
        },
        Some(FieldDefault::Trait(_)) => quote_spanned! {ty.span()=>
            #member: #private::field_or::<#ty, __A>(__events_attributes, #event, #wire, ::core::default::Default::default)?
        },
        Some(FieldDefault::Path(path)) => quote_spanned! {path.span()=>
            #member: #private::field_or::<#ty, __A>(__events_attributes, #event, #wire, #path)?
        },
    }
}

/// An impl with the right shape and no behaviour, emitted beside errors.
fn fallback(input: &Input) -> TokenStream {
    let ident = input.ident;
    let krate = &input.krate;
    let private = quote!(#krate::__private);
    wrap(quote! {
        #[automatically_derived]
        impl #krate::DomainEvent for #ident {
            const EVENT_NAME: &'static str = "";
            const NAME: #krate::EventName<'static> = #krate::EventName {
                company: "",
                service: "",
                version: 1,
                resource: "",
                action: "",
            };
            fn serialize_attributes<__S>(&self, _: __S) -> ::core::result::Result<__S::Ok, __S::Error>
            where
                __S: #private::serde::Serializer,
            {
                ::core::unreachable!()
            }
            fn from_attributes<__A>(_: &__A) -> ::core::result::Result<Self, #krate::DecodeError>
            where
                __A: #private::AttributeSource + ?::core::marker::Sized,
            {
                ::core::unreachable!()
            }
        }
    })
}
