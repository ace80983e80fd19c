//! The domain layer: events and aggregates. No I/O.

pub mod aggregates;
pub mod events;
