//! Code generation for `#[derive(DomainEvent)]`, from the typed view only.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::DeriveInput;

use crate::ast::{Body, Field, Input};
use crate::attr::FieldDefault;
use crate::ctxt::Ctxt;
use crate::valid::ValidName;
use crate::wrap::{respan, wrap};

/// The derive's entry point: read (`from_syn`), check (`validate`), then
/// generate; on errors, the errors plus a fallback impl so one mistake does
/// not cascade into "not a domain event" errors elsewhere.
pub fn derive(input: &DeriveInput) -> TokenStream {
    let mut cx = Ctxt::default();
    let ast = Input::from_syn(&mut cx, input);
    let name = ast.validate(&mut cx);
    match name {
        Some(name) if !cx.has_errors() => expand(&ast, &name),
        _ => {
            let errors = cx.into_compile_errors();
            let fallback = if ast.is_generic() {
                TokenStream::new()
            } else {
                fallback(&ast)
            };
            quote!(#errors #fallback)
        }
    }
}

fn expand(input: &Input, name: &ValidName) -> TokenStream {
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
    let message_type = name.message_type;
    let upcast = input
        .attrs
        .upcast_from
        .as_ref()
        .map(|source| crate::expand_upcast::upcast(input, name, source));

    let sent: Vec<&Field> = input.fields().iter().filter(|f| !f.skip()).collect();
    let len = sent.len();
    let entries = sent.iter().map(|f| {
        let member = f.member;
        let wire = &f.wire;
        let ty = f.ty;
        quote_spanned! {ty.span()=>
            (&#private::Field::<#ty>::new()).__events_write(&mut __events_map, #wire, &self.#member)?;
        }
    });
    let visit = visit_attributes(input, &private);
    // One check per sent field, at its type: a type without serde's traits
    // is one error there; the bodies read and write fields through
    // `Field`, which compiles either way.
    let checks = sent.iter().map(|f| {
        let ty = f.ty;
        let check = respan(quote!(#private::attribute_type), ty.span());
        quote_spanned!(ty.span()=> #check::<#ty>();)
    });

    wrap(quote! {
        #[allow(unused_imports)]
        use #private::{NotSerdeField as _, SerdeField as _};

        #[allow(dead_code)]
        fn __events_check_field_types() {
            #(#checks)*
        }

        #[automatically_derived]
        impl #krate::DomainEvent for #ident {
            const EVENT_NAME: &'static str = #full;
            const NAME: #krate::EventName<'static> = #krate::EventName {
                company: #company,
                service: #service,
                version: #version,
                message_type: #message_type,
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

            #visit
        }

        #private::inventory::submit! {
            #private::EventType::of::<#ident>()
        }

        #upcast
    })
}

/// `visit_attributes`: one pass over the attributes map, each value read
/// straight into its field's slot, recording the attribute being read so an
/// error names it. Unknown keys are skipped, the last duplicate wins, an
/// absent `Option` is `None`.
fn visit_attributes(input: &Input, private: &TokenStream) -> TokenStream {
    let ident = input.ident;
    // Each slot carries its field type's span: a type error about the slot
    // then lands on the user's field, not on the derive.
    let fields = input.fields();
    let slot = |i: usize| quote::format_ident!("__events_field_{}", i, span = fields[i].ty.span());
    let sent = || fields.iter().enumerate().filter(|(_, f)| !f.skip());
    let slots = sent().map(|(i, f)| {
        let slot = slot(i);
        let ty = f.ty;
        quote!(let mut #slot: ::core::option::Option<#ty> = ::core::option::Option::None;)
    });
    let arms = sent().map(|(i, f)| {
        let slot = slot(i);
        let wire = &f.wire;
        let ty = f.ty;
        let read = quote_spanned! {ty.span()=>
            #slot = ::core::option::Option::Some(
                (&#private::Field::<#ty>::new()).__events_read(&mut __events_map, __events_at, #wire)?,
            );
        };
        quote! {
            #wire => {
                #read
            }
        }
    });
    let inits = fields.iter().enumerate().map(|(i, f)| {
        let member = f.member;
        let ty = f.ty;
        if f.skip() {
            return quote_spanned!(ty.span()=> #member: ::core::default::Default::default());
        }
        let slot = slot(i);
        let wire = &f.wire;
        let member_name = member.to_string().trim_start_matches("r#").to_owned();
        let absent = match &f.attrs.default {
            None => {
                let absent = quote_spanned!(ty.span()=> (&#private::Field::<#ty>::new()).__events_absent());
                quote! {
                    match #absent {
                        ::core::option::Option::Some(__events_value) => __events_value,
                        ::core::option::Option::None => {
                            #private::Position::missing(__events_at, #wire, #member_name);
                            return ::core::result::Result::Err(#private::missing::<#ty, __M::Error>());
                        }
                    }
                }
            }
            Some(FieldDefault::Trait(_)) => quote_spanned!(ty.span()=> ::core::default::Default::default()),
            Some(FieldDefault::Path(path)) => quote!(#path()),
        };
        quote! {
            #member: match #slot {
                ::core::option::Option::Some(__events_value) => __events_value,
                ::core::option::Option::None => #absent,
            }
        }
    });
    let construct = if matches!(input.body, Body::Unit) {
        quote!(#ident)
    } else {
        quote!(#ident { #(#inits,)* })
    };
    quote! {
        fn visit_attributes<'de, __M>(
            mut __events_map: __M,
            __events_at: &mut #private::Position,
        ) -> ::core::result::Result<Self, __M::Error>
        where
            __M: #private::serde::de::MapAccess<'de>,
        {
            #(#slots)*
            while let ::core::option::Option::Some(__events_key) =
                #private::serde::de::MapAccess::next_key::<#private::Key<'de>>(&mut __events_map)?
            {
                match __events_key.as_str() {
                    #(#arms)*
                    _ => {
                        #private::serde::de::MapAccess::next_value::<#private::serde::de::IgnoredAny>(
                            &mut __events_map,
                        )?;
                    }
                }
            }
            ::core::result::Result::Ok(#construct)
        }
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
                message_type: "event",
                resource: "",
                action: "",
            };
            fn serialize_attributes<__S>(&self, _: __S) -> ::core::result::Result<__S::Ok, __S::Error>
            where
                __S: #private::serde::Serializer,
            {
                ::core::unreachable!()
            }
            fn visit_attributes<'de, __M>(
                _: __M,
                _: &mut #private::Position,
            ) -> ::core::result::Result<Self, __M::Error>
            where
                __M: #private::serde::de::MapAccess<'de>,
            {
                ::core::unreachable!()
            }
        }
    })
}
