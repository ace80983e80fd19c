//! The macros' expansions are clean under strict lints: this file is checked
//! by `cargo clippy --workspace --all-targets -- -D warnings` (part of the
//! test command), with pedantic clippy lints and `unused_qualifications`
//! denied.
#![deny(unused_qualifications, clippy::pedantic, missing_docs)]

use events_core::{handler, DomainEvent, Event, Handler, HandlerResult};

/// An event with every field option.
#[derive(DomainEvent, Debug, Clone, PartialEq, Eq)]
#[event(
    company = "testclean",
    service = "api",
    version = 1,
    resource = "company",
    action = "created"
)]
pub struct CompanyCreated {
    /// Renamed on the wire.
    #[event(rename = "companyName")]
    pub name: String,
    /// Not sent.
    #[event(skip)]
    pub cache: Vec<u8>,
    /// Defaulted when absent.
    #[event(default)]
    pub employees: u32,
    /// Optional.
    pub nickname: Option<String>,
}

/// An event without attributes.
#[derive(DomainEvent, Debug, Clone, Copy, PartialEq, Eq)]
#[event(
    company = "testclean",
    service = "api",
    version = 1,
    resource = "cache",
    action = "reset"
)]
pub struct CacheReset;

/// A function handler.
///
/// # Errors
///
/// Never; the signature shows the `Result` form.
#[handler]
pub async fn on_created(event: &Event<CompanyCreated>) -> Result<(), std::io::Error> {
    let _ = event.name.len();
    Ok(())
}

/// A by-value handler.
#[handler]
pub async fn on_reset(event: CacheReset) {
    let _ = event;
}

/// An impl handler.
#[derive(Debug, Default)]
pub struct Auditor;

#[handler]
impl Handler<CompanyCreated> for Auditor {
    async fn handle(&self, event: &Event<CompanyCreated>) -> HandlerResult {
        let _ = event.employees;
        Ok(())
    }
}

#[test]
fn the_expansion_works() {
    let event = CompanyCreated {
        name: "Acme".into(),
        cache: vec![1],
        employees: 2,
        nickname: None,
    };
    let back = CompanyCreated::from_dict(&event.to_dict().unwrap()).unwrap();
    assert_eq!(
        back,
        CompanyCreated {
            cache: Vec::new(),
            ..event
        }
    );
}
