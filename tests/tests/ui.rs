//! Compile-time behaviour of `#[derive(DomainEvent)]` and `#[handler]`:
//! every error the macros emit, with its message and span checked in
//! `ui/**/fail/*.stderr`, and every accepted form in `ui/**/pass`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("ui/event/pass/*.rs");
    t.compile_fail("ui/event/fail/*.rs");
    t.pass("ui/handler/pass/*.rs");
    t.compile_fail("ui/handler/fail/*.rs");
}
