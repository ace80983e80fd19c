//! The one wrapper of every generated item (as serde's `dummy.rs`).

use proc_macro2::{Span, TokenStream};
use quote::quote;

/// Wraps generated items in `const _: () = { ... };`, so their helper names
/// never reach the user's namespace, with the lints that generated code
/// must not trip in the user's crate.
pub fn wrap(body: TokenStream) -> TokenStream {
    quote! {
        #[doc(hidden)]
        #[allow(non_upper_case_globals, unused_attributes, unused_qualifications, clippy::absolute_paths)]
        const _: () = {
            #body
        };
    }
}

/// `tokens` with every span set to `span`, so an error about them points
/// at the user's tokens (a path interpolated into `quote_spanned!` keeps
/// its own spans otherwise).
pub fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut token| {
            token.set_span(span);
            token
        })
        .collect()
}
