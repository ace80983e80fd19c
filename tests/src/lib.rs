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

/// A test that needs the process environment set another way (the
/// process-wide bus and the golden files read it) runs its body in a child
/// process of its own test binary, given that environment, instead of
/// calling `std::env::set_var` in a multi-threaded test binary:
///
/// ```ignore
/// #[test]
/// fn reads_the_environment() {
///     const TEST: &str = "reads_the_environment";
///     if events_tests::child::phase(TEST).is_none() {
///         events_tests::child::run(TEST, "disabled", &[("EVENT_BUS_ENABLED", Some("false"))]);
///         return;
///     }
///     // The body, in the child, with EVENT_BUS_ENABLED=false.
/// }
/// ```
pub mod child {
    use std::process::Command;

    /// Set in the child: `test/phase`.
    const CHILD_VAR: &str = "EVENTS_TESTS_CHILD";

    /// In the child process that runs `test`, the phase it was started for;
    /// `None` in the test binary cargo started.
    pub fn phase(test: &str) -> Option<String> {
        let child = std::env::var(CHILD_VAR).ok()?;
        let (name, phase) = child.split_once('/')?;
        (name == test).then(|| phase.to_owned())
    }

    /// Runs `test` of this test binary in a child process, alone, with
    /// `env` (`Some`: set, `None`: removed) and the `phase` the child reads
    /// with [`phase`].
    ///
    /// # Panics
    ///
    /// When the child cannot be started, or its run of the test did not
    /// pass (the message has the child's output).
    pub fn run(test: &str, phase: &str, env: &[(&str, Option<&str>)]) {
        let exe = std::env::current_exe().unwrap_or_else(|e| panic!("no test binary path: {e}"));
        let mut command = Command::new(exe);
        command
            .args([test, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_VAR, format!("{test}/{phase}"));
        for (var, value) in env {
            match value {
                Some(value) => command.env(var, value),
                None => command.env_remove(var),
            };
        }
        let out = command
            .output()
            .unwrap_or_else(|e| panic!("cannot run the child of `{test}`: {e}"));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("test result: ok. 1 passed"),
            "the child running `{test}` ({phase}) did not pass: {}\n--- stdout\n{stdout}\n--- stderr\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
