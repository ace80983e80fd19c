//! The outbox against a real PostgreSQL server (a throwaway one per test
//! binary, `events_pg_tests::shared`; a fresh database per test).

// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod failures;
mod gauges;
mod plan;
mod relays;
mod restart;
mod wake;
mod write;
mod write_with;
