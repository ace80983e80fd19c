//! Compile-time behaviour of `#[derive(DomainEvent)]` (events, commands,
//! upcasters) and `#[handler]`:
//! every error the macros emit, with its message and span checked in
//! `ui/**/fail/*.stderr`, and every accepted form in `ui/**/pass`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("ui/event/pass/*.rs");
    t.compile_fail("ui/event/fail/*.rs");
    t.pass("ui/handler/pass/*.rs");
    t.compile_fail("ui/handler/fail/*.rs");
    t.pass("ui/command/pass/*.rs");
    t.compile_fail("ui/command/fail/*.rs");
}
