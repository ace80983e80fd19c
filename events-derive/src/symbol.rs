//! The macros' attribute keys, each named once (as serde's `Symbol`s): the
//! parser matches on these constants and every message that lists keys
//! reads them from the lists below.

use std::fmt::{self, Display};

use syn::{Ident, Path};

/// One key of `#[event(...)]` or `#[handler(...)]`.
#[derive(Copy, Clone, PartialEq, Eq)]
pub struct Symbol(&'static str);

/// The attribute itself: `#[event(...)]`.
pub const EVENT: Symbol = Symbol("event");
/// `company = "acme"`.
pub const COMPANY: Symbol = Symbol("company");
/// `service = "billing"`.
pub const SERVICE: Symbol = Symbol("service");
/// `version = 1`.
pub const VERSION: Symbol = Symbol("version");
/// `resource = "invoice"`.
pub const RESOURCE: Symbol = Symbol("resource");
/// `action = "paid"`.
pub const ACTION: Symbol = Symbol("action");
/// `message_type = "event"`.
pub const MESSAGE_TYPE: Symbol = Symbol("message_type");
/// `upcast_from = OlderVersion`: the type this one is upcast from.
pub const UPCAST_FROM: Symbol = Symbol("upcast_from");
/// `crate = "path::to::events_core"`, on the struct and on `#[handler]`.
pub const CRATE: Symbol = Symbol("crate");
/// `rename = "wireName"` on a field.
pub const RENAME: Symbol = Symbol("rename");
/// `skip` on a field.
pub const SKIP: Symbol = Symbol("skip");
/// `default` or `default = "path::to_fn"` on a field.
pub const DEFAULT: Symbol = Symbol("default");

/// Keys of `#[event(...)]` on a struct.
pub const CONTAINER_KEYS: &[Symbol] = &[
    COMPANY,
    SERVICE,
    VERSION,
    RESOURCE,
    ACTION,
    MESSAGE_TYPE,
    UPCAST_FROM,
    CRATE,
];

/// Keys that every event must set.
pub const REQUIRED_KEYS: &[Symbol] = &[COMPANY, SERVICE, VERSION, RESOURCE, ACTION];

/// Keys of `#[event(...)]` on a field.
pub const FIELD_KEYS: &[Symbol] = &[RENAME, SKIP, DEFAULT];

/// Keys of `#[handler(...)]`.
pub const HANDLER_KEYS: &[Symbol] = &[CRATE];

impl Symbol {
    /// The key as written.
    pub const fn as_str(self) -> &'static str {
        self.0
    }
}

impl PartialEq<Symbol> for Ident {
    fn eq(&self, word: &Symbol) -> bool {
        self == word.0
    }
}

impl PartialEq<Symbol> for Path {
    fn eq(&self, word: &Symbol) -> bool {
        self.is_ident(word.0)
    }
}

impl PartialEq<Symbol> for str {
    fn eq(&self, word: &Symbol) -> bool {
        self == word.0
    }
}

impl PartialEq<Symbol> for String {
    fn eq(&self, word: &Symbol) -> bool {
        self == word.0
    }
}

impl Display for Symbol {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.0)
    }
}

/// `` `a`, `b`, `c` ``, for messages that list keys.
pub fn list(keys: &[Symbol]) -> String {
    keys.iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
