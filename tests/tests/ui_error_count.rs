//! A handler whose argument is not an event is one error, counted once:
//! rustc's "aborting due to 1 previous error" under the one error shown
//! (trybuild's `.stderr` files leave that line out, so this test compiles
//! `ui/handler/fail/one_wrong_argument.rs` with rustc itself, against the
//! `events_core` this test was built with).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The directory of this test's dependencies (`target/<profile>/deps`).
fn deps_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().to_path_buf()
}

/// rustc on `file` as a binary of edition 2021 with `events_core` from
/// `rlib`, checking only; its stderr (JSON diagnostics) and success.
fn rustc(file: &Path, rlib: &Path, out: &Path) -> (bool, String) {
    let deps = deps_dir();
    let output = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .arg("--edition=2021")
        .arg("--crate-type=bin")
        .arg("--emit=metadata")
        .arg("--error-format=json")
        .arg("--out-dir")
        .arg(out)
        .arg("--extern")
        .arg(format!("events_core={}", rlib.display()))
        .arg("-L")
        .arg(format!("dependency={}", deps.display()))
        .arg(file)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The messages of rustc's JSON diagnostics.
fn messages(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter_map(|d| d["message"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn a_handler_argument_that_is_not_an_event_is_one_error_counted_once() {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = tempfile::tempdir().unwrap();
    // The newest `events_core` of the deps directory that compiles a valid
    // handler (the one this test was built with is the newest built).
    let mut rlibs: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(deps_dir())
        .unwrap()
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libevents_core-") && n.ends_with(".rlib"))
        })
        .filter_map(|path| Some((path.metadata().ok()?.modified().ok()?, path)))
        .collect();
    rlibs.sort();
    let valid = here.join("ui/handler/pass/forms.rs");
    let rlib = rlibs
        .iter()
        .rev()
        .map(|(_, path)| path)
        .find(|rlib| rustc(&valid, rlib, out.path()).0)
        .unwrap_or_else(|| panic!("no events_core in {:?} compiles {valid:?}", deps_dir()));

    let (ok, stderr) = rustc(
        &here.join("ui/handler/fail/one_wrong_argument.rs"),
        rlib,
        out.path(),
    );
    assert!(!ok, "{stderr}");
    let messages = messages(&stderr);
    let errors: Vec<&String> = messages
        .iter()
        .filter(|m| m.contains("is not a domain event"))
        .collect();
    assert_eq!(errors.len(), 1, "{messages:#?}");
    assert!(
        messages
            .iter()
            .any(|m| m == "aborting due to 1 previous error"),
        "{messages:#?}"
    );
}
