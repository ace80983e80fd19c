//! Tests against a real AWS API on loopback: moto, started and stopped by
//! the project's harness ([`moto`]). The tests live in `tests/`; the
//! `company_publisher` binary (`src/bin/`) runs the company example's code
//! path as a separate process configured by its environment.

pub mod consume;
pub mod moto;
