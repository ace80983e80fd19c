#![allow(dead_code, non_camel_case_types)]

use events_core::{handler, DomainEvent, Event};

mod inventory {}
mod serde {}
struct Result;
struct Option;
struct Box;
struct Ok;
struct Err;
struct __events_call;

#[derive(DomainEvent, Clone)]
#[event(company = "testclean", service = "api", version = 1, resource = "company", action = "created")]
pub struct CompanyCreated {
    pub name: std::string::String,
}

#[handler]
async fn one(event: &Event<CompanyCreated>) {
    let _ = event;
}

#[handler]
async fn two(event: CompanyCreated) -> std::result::Result<(), std::io::Error> {
    let _ = event;
    std::result::Result::Ok(())
}

fn main() {}
