//! Messaging: the event handlers of this service.

pub mod handlers;
