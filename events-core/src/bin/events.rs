//! `events`: see and act on an event store. `events --help` for usage.

fn main() -> std::process::ExitCode {
    events_core::cli::main()
}
