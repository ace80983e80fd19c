//! Code generation for `#[handler]`: the user's item is kept as written and
//! a registration is added beside it, with checks spanned on the user's
//! tokens so a trait error lands on their argument or return type.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::Item;

use crate::ast::{FnHandler, Handler, HandlerItem, ImplHandler, ImplTrait};
use crate::ctxt::Ctxt;
use crate::valid::HANDLER_EXAMPLE;
use crate::wrap::wrap;

/// The attribute's entry point: read (`from_syn`), check (`validate`), then
/// generate the registration; the user's item is always emitted.
pub fn expand(args: TokenStream, input: TokenStream) -> TokenStream {
    let mut cx = Ctxt::default();
    let item = match syn::parse2::<Item>(input.clone()) {
        Ok(item) => item,
        Err(_) => {
            cx.error_at(
                Span::call_site(),
                format!("`#[handler]` goes on an `async fn` or on an `impl Handler<E> for T` block, e.g. `{HANDLER_EXAMPLE}`"),
            );
            let errors = cx.into_compile_errors();
            return quote!(#errors #input);
        }
    };
    let handler = Handler::from_syn(&mut cx, args, &item);
    handler.validate(&mut cx);
    let registration = if cx.has_errors() {
        None
    } else {
        match &handler.item {
            HandlerItem::Fn(function) => Some(function_handler(function, &handler.krate)),
            HandlerItem::Impl(block) => impl_handler(block, &handler.krate),
            HandlerItem::Other(_) => None,
        }
    };
    let errors = cx.into_compile_errors();
    // The user's item is always emitted as written, so one mistake does not
    // turn every call of the function into another error.
    // A handler must be `async` even when it awaits nothing: keep pedantic
    // clippy from asking the user to drop what the bus requires.
    let item = match item {
        Item::Fn(mut function) => {
            function
                .attrs
                .push(syn::parse_quote!(#[allow(clippy::unused_async)]));
            Item::Fn(function)
        }
        other => other,
    };
    quote!(#errors #item #registration)
}

fn function_handler(function: &FnHandler, krate: &syn::Path) -> TokenStream {
    let sig = &function.item.sig;
    let name = function.name;
    let private = quote!(#krate::__private);
    let Some(event) = function.event() else {
        return TokenStream::new();
    };
    let inner = event.inner;
    let (event_ty, arg) = if let Some(payload) = envelope_payload(inner) {
        // `Event<E>`: every use goes through one projection of `E` at its
        // span, so an `E` that is not an event is one error there, "`E` is
        // not a domain event", as for a `&E` argument.
        let span = payload.span();
        let event_ty = quote_spanned!(span=> <#payload as #private::EventArg>::Event);
        let arg = if event.by_ref {
            quote_spanned!(span=> #private::envelope::<#event_ty>(&*__events_event))
        } else {
            quote_spanned!(span=> #private::envelope_owned::<#event_ty>(&*__events_event))
        };
        (event_ty, arg)
    } else {
        let arg = if event.by_ref {
            quote_spanned!(inner.span()=> <#inner as #private::EventArg>::borrow(&*__events_event))
        } else {
            quote_spanned!(inner.span()=> <#inner as #private::EventArg>::owned(&*__events_event))
        };
        (
            quote_spanned!(inner.span()=> <#inner as #private::EventArg>::Event),
            arg,
        )
    };
    let call = quote_spanned!(name.span()=> #private::assert_send(#name(#arg)));
    let output = match &sig.output {
        syn::ReturnType::Default => quote!(()),
        syn::ReturnType::Type(_, ty) => quote!(#ty),
    };
    let into_result =
        quote_spanned!(sig.output.span()=> <#output as #private::HandlerOutput>::into_result);
    // One body (the registration's, the call a closure in it) names the
    // argument's event type: an argument that is not an event is one error,
    // counted once ("due to 1 previous error"), not once per item.
    wrap(quote! {
        #private::inventory::submit! {
            #private::function_handler::<#event_ty>(
                ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#name)),
                |__events_event: #private::Shared| -> ::core::result::Result<#private::HandlerFuture, #private::Shared> {
                    let __events_event = #private::downcast::<#event_ty>(__events_event)?;
                    ::core::result::Result::Ok(::std::boxed::Box::pin(async move {
                        #into_result(#call.await)
                    }))
                },
            )
        }
    })
}

/// `E` of an argument written `Event<E>` (one type argument; the last path
/// segment named `Event`). An event type cannot be generic, so such a type
/// can only be the envelope.
fn envelope_payload(ty: &syn::Type) -> Option<&syn::Type> {
    let syn::Type::Path(path) = ty else {
        return None;
    };
    if path.qself.is_some() {
        return None;
    }
    let last = path.path.segments.last()?;
    if last.ident != "Event" {
        return None;
    }
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match args.args.iter().collect::<Vec<_>>().as_slice() {
        [syn::GenericArgument::Type(payload)] => Some(payload),
        _ => None,
    }
}

fn impl_handler(block: &ImplHandler, krate: &syn::Path) -> Option<TokenStream> {
    let ImplTrait::Handler(event) = block.trait_ else {
        return None;
    };
    let self_ty = block.self_ty;
    let private = quote!(#krate::__private);
    let make = quote_spanned!(self_ty.span()=> #private::make_instance::<#event, #self_ty>);
    Some(wrap(quote! {
        #private::inventory::submit! {
            #private::instance_handler::<#event>(
                ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#self_ty)),
                #make,
            )
        }
    }))
}
