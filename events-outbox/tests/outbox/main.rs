//! The outbox against a real PostgreSQL server (a throwaway one per test
//! binary, `events_pg_tests::shared`; a fresh database per test).

mod support;

mod failures;
mod plan;
mod relays;
mod restart;
mod write;
