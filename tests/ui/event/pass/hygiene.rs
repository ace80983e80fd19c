// The expansion must not depend on names in the user's scope.
#![no_implicit_prelude]
#![allow(dead_code, non_camel_case_types)]

extern crate events_core;
extern crate std;

mod serde {}
mod serde_json {}
mod inventory {}
struct Result;
struct Option;
struct Box;
struct Ok;
struct Err;
struct Some;
struct None;
struct String;
struct Default;
struct Vec;
struct __S;

// Traits in scope with blanket impls and common method names must not make
// the expansion's calls ambiguous.
trait Everything {
    fn write(&self) {}
    fn read(&self) {}
    fn absent(&self) {}
    fn new() {}
}
impl<T: ?::std::marker::Sized> Everything for T {}

#[derive(events_core::DomainEvent)]
#[event(company = "testclean", service = "api", version = 1, resource = "company", action = "created")]
struct CompanyCreated {
    name: std::string::String,
    #[event(default)]
    count: u32,
    #[event(skip)]
    skipped: std::vec::Vec<u8>,
}

#[derive(events_core::DomainEvent)]
#[event(company = "testclean", service = "api", version = 1, resource = "company", action = "deleted")]
struct CompanyDeleted;

fn main() {}
