//! Workspace-level integration tests live in `tests/tests/`; this library
//! holds what a test and its child processes (`src/bin/`) must share.

use events_core::DomainEvent;

/// The event the crash tests' child process writes and the test reads back.
#[derive(DomainEvent, Debug, Clone)]
#[event(
    company = "acme",
    service = "crash",
    version = 1,
    resource = "record",
    action = "written"
)]
pub struct RecordWritten {
    /// Which task wrote it.
    pub task: u32,
    /// Its number in that task.
    pub n: u64,
}
