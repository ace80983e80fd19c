//! Code generation for `#[handler]`: the user's item is kept as written and
//! a registration is added beside it, with checks spanned on the user's
//! tokens so a trait error lands on their argument or return type.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, GenericArgument, Item, ItemFn, ItemImpl, PathArguments, Type};

use crate::ctxt::Ctxt;

const EXAMPLE: &str =
    "#[handler] async fn send_welcome_email(event: &Event<CompanyCreated>) { .. }";

/// The attribute's entry point.
pub fn expand(args: TokenStream, input: TokenStream) -> TokenStream {
    let mut cx = Ctxt::default();
    if !args.is_empty() {
        cx.error_spanned_by(&args, "`#[handler]` takes no arguments: the handler's name is its module path and function name");
    }
    let item = match syn::parse2::<Item>(input.clone()) {
        Ok(item) => item,
        Err(_) => {
            cx.error_at(
                Span::call_site(),
                format!("`#[handler]` goes on an `async fn` or on an `impl Handler<E> for T` block, e.g. `{EXAMPLE}`"),
            );
            let errors = cx.into_compile_errors();
            return quote!(#errors #input);
        }
    };
    let krate: syn::Path = syn::parse_quote!(::events_core);
    let registration = match &item {
        Item::Fn(function) => function_handler(&mut cx, function, &krate),
        Item::Impl(block) => impl_handler(&mut cx, block, &krate),
        other => {
            cx.error_at(
                item_keyword(other),
                format!("`#[handler]` goes on an `async fn` or on an `impl Handler<E> for T` block, e.g. `{EXAMPLE}`"),
            );
            None
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
    match registration {
        Some(registration) if errors.is_empty() => quote!(#item #registration),
        _ => quote!(#errors #item),
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

fn wrap(body: TokenStream) -> TokenStream {
    quote! {
        #[doc(hidden)]
        #[allow(non_upper_case_globals, unused_attributes, unused_qualifications, clippy::absolute_paths)]
        const _: () = {
            #body
        };
    }
}

fn function_handler(cx: &mut Ctxt, function: &ItemFn, krate: &syn::Path) -> Option<TokenStream> {
    let sig = &function.sig;
    let name = &sig.ident;
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
    let mut event_arg = None;
    let mut typed = 0;
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(receiver) => cx.error_spanned_by(
                receiver,
                "a `#[handler]` function cannot take `self`: put `#[handler]` on the `impl Handler<E> for T` block, \
                 or register a value with `EventBusBuilder::register_handler`",
            ),
            FnArg::Typed(arg) => {
                typed += 1;
                if typed == 1 {
                    event_arg = Some(&*arg.ty);
                } else {
                    cx.error_spanned_by(
                        arg,
                        "a handler takes exactly one argument, the event; for dependencies implement `Handler<E>` on \
                         a struct holding them and register it with `EventBusBuilder::register_handler`",
                    );
                }
            }
        }
    }
    if sig.inputs.is_empty() {
        cx.error_at(
            sig.paren_token.span.join(),
            format!("a handler takes the event it handles as its argument, e.g. `{EXAMPLE}`"),
        );
    }
    if let Some(variadic) = &sig.variadic {
        cx.error_spanned_by(variadic, "a handler cannot be variadic");
    }
    let ty = event_arg?;
    if cx.has_errors() {
        return None;
    }
    let private = quote!(#krate::__private);
    let (inner, by_ref) = match ty {
        Type::Reference(reference) => {
            if let Some(mutability) = reference.mutability {
                cx.error_spanned_by(
                    mutability,
                    "a handler gets the event by shared reference (`&`) or by value; events are not modified",
                );
                return None;
            }
            (&*reference.elem, true)
        }
        other => (other, false),
    };
    let event_ty = quote_spanned!(inner.span()=> <#inner as #private::EventArg>::Event);
    let arg = if by_ref {
        quote_spanned!(inner.span()=> <#inner as #private::EventArg>::borrow(&*__events_event))
    } else {
        quote_spanned!(inner.span()=> <#inner as #private::EventArg>::owned(&*__events_event))
    };
    let call = quote_spanned!(name.span()=> #private::assert_send(#name(#arg)));
    let output = match &sig.output {
        syn::ReturnType::Default => quote!(()),
        syn::ReturnType::Type(_, ty) => quote!(#ty),
    };
    let into_result =
        quote_spanned!(sig.output.span()=> <#output as #private::HandlerOutput>::into_result);
    Some(wrap(quote! {
        fn __events_call(
            __events_event: #private::Shared,
        ) -> ::core::result::Result<#private::HandlerFuture, #private::Shared> {
            let __events_event = #private::downcast::<#event_ty>(__events_event)?;
            ::core::result::Result::Ok(::std::boxed::Box::pin(async move {
                #into_result(#call.await)
            }))
        }

        #private::inventory::submit! {
            #private::function_handler::<#event_ty>(
                ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#name)),
                __events_call,
            )
        }
    }))
}

fn impl_handler(cx: &mut Ctxt, block: &ItemImpl, krate: &syn::Path) -> Option<TokenStream> {
    let Some((_, path, _)) = &block.trait_ else {
        cx.error_spanned_by(
            &block.self_ty,
            "`#[handler]` on an `impl` block needs a trait impl: `impl Handler<E> for T`",
        );
        return None;
    };
    if !block.generics.params.is_empty() || block.generics.where_clause.is_some() {
        cx.error_spanned_by(
            &block.generics,
            "a `#[handler]` impl cannot be generic: it is built once, with `Default`",
        );
        return None;
    }
    let last = path.segments.last()?;
    let event = match (&last.ident, &last.arguments) {
        (ident, PathArguments::AngleBracketed(args))
            if ident == "Handler" && args.args.len() == 1 =>
        {
            match args.args.first() {
                Some(GenericArgument::Type(ty)) => ty,
                _ => {
                    cx.error_spanned_by(
                        args,
                        "expected the event type: `impl Handler<CompanyCreated> for T`",
                    );
                    return None;
                }
            }
        }
        _ => {
            cx.error_spanned_by(
                path,
                "`#[handler]` on an `impl` block needs `impl Handler<E> for T`",
            );
            return None;
        }
    };
    let self_ty = &block.self_ty;
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
