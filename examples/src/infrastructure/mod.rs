//! The infrastructure layer: adapters.

pub mod messaging;
pub mod postgres;
pub mod repository;
