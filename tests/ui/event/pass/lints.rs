// The expansion is warning-free under strict lints.
#![deny(warnings, unused_qualifications, unused_results, missing_docs, trivial_casts, unused_extern_crates)]
//! An event crate.

use events_core::DomainEvent;

/// Created.
#[derive(DomainEvent)]
#[event(company = "testclean", service = "api", version = 1, resource = "company", action = "created")]
pub struct CompanyCreated {
    /// The name.
    pub name: String,
    /// Skipped.
    #[event(skip)]
    pub cache: u32,
}

fn main() {}
