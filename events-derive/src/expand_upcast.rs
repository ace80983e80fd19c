//! Code generation for `upcast_from = OlderType`: the checks that the
//! older type is an older version of the same event (constants evaluated
//! while the user's crate compiles, their errors at the user's path), the
//! one-upcaster-per-source impl, and the registration of the upcaster.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use crate::ast::Input;
use crate::valid::ValidName;
use crate::wrap::respan;

/// The items of `upcast_from = source` on the event `input` named `name`.
pub fn upcast(input: &Input, name: &ValidName, source: &syn::Path) -> TokenStream {
    let ident = input.ident;
    let krate = &input.krate;
    let span = source.span();
    let private = respan(quote!(#krate::__private), span);
    let event_trait = respan(quote!(#krate::DomainEvent), span);
    // The target at the user's path too: a missing `From` impl is reported
    // at `upcast_from = ..`.
    let target = respan(quote!(#ident), span);
    let source_text = quote!(#source).to_string().replace(' ', "");
    let older = name.version.saturating_sub(1).max(1);
    let example = format!(
        "#[event(company = \"{}\", service = \"{}\", version = {older}, {}resource = \"{}\", action = \"{}\")]",
        name.company,
        name.service,
        if name.message_type == "command" {
            "message_type = \"command\", "
        } else {
            ""
        },
        name.resource,
        name.action,
    );
    let same = |part: &str, value: &str| {
        let message = format!(
            "`upcast_from = {source_text}`: an upcaster converts an older version of the same {kind}, \
             but `{source_text}` has another `{part}` than `{ident}` (`{value}`); name the older version of \
             `{full}`, a type with `{example}`",
            kind = name.message_type,
            full = name.full,
        );
        let field = syn::Ident::new(part, span);
        quote_spanned! {span=>
            if !#private::same_str(<#source as #event_trait>::NAME.#field, #value) {
                ::core::panic!(#message);
            }
        }
    };
    let checks = [
        same("company", &name.company),
        same("service", &name.service),
        same("message_type", name.message_type),
        same("resource", &name.resource),
        same("action", &name.action),
    ];
    let version = name.version;
    let version_message = format!(
        "`upcast_from = {source_text}`: the older type's `version` must be lower than `{ident}`'s ({version}): \
         an upcaster converts an older version into a newer one, never back; name a type with `{example}`"
    );
    quote_spanned! {span=>
        const _: () = {
            #(#checks)*
            if !(<#source as #event_trait>::NAME.version < #version) {
                ::core::panic!(#version_message);
            }
        };

        #[automatically_derived]
        impl #private::UpcastSource for #source {
            type Target = #ident;
        }

        #private::inventory::submit! {
            #private::Upcaster::of::<#target, #source>()
        }
    }
}
