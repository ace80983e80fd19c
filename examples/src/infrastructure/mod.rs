//! The infrastructure layer: adapters.

pub mod messaging;
pub mod repository;
