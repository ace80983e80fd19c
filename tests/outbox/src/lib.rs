//! What the outbox's tests against real servers share: their event, writers committing it, and a handler recording what a bus saw in a file.
//!
//! The crash test runs the relay in a child process (`relay_child`, in
//! `src/bin`) on a local-mode bus whose one handler ([`AppendIds`]) appends
//! each event's id to a file before it returns: what the bus accepted is on
//! disk (the kernel's page cache survives a SIGKILL of the process), so the
//! test, in the parent, reads exactly what was published, duplicates
//! included, whenever the child dies.

mod proxy;
mod record;
mod write;

pub use proxy::Proxy;
pub use record::{read_ids, AppendIds};
pub use write::{connect, write_numbered, Committed};

use events_core::DomainEvent;

/// The event the tests write: the `n`th of writer `writer`.
#[derive(DomainEvent, Debug, Clone, PartialEq)]
#[event(
    company = "testclean",
    service = "outboxtests",
    version = 1,
    resource = "item",
    action = "numbered"
)]
pub struct Numbered {
    /// The writer (a task of the test).
    pub writer: u32,
    /// Its sequence number within the writer.
    pub n: u32,
}
