//! `events`: see and act on an event store, and replay it through the bus
//! the environment configures (`EVENT_BUS_MODE=eventbridge` sends through
//! EventBridge, with the same variables as the program). `events --help` for
//! usage; the commands are [`events_cli`]'s.
//!
//! A crate of its own because it links both `events-core` and
//! `events-eventbridge` (which depends on `events-core`).

// Linking the EventBridge crate registers the `eventbridge` mode.
use events_eventbridge as _;

fn main() -> std::process::ExitCode {
    events_cli::main()
}
