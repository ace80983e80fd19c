//! Who has the store open: the lock and state files beside it (clean close, high-water mark).
//!
//! Beside `events.db` the store keeps `events.db-lock` (held exclusively for
//! a moment while a process opens or closes the store) and `events.db-state`
//! (held shared by every process that has the store open; it records whether
//! the last close was clean and the highest sequence number acknowledged).

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use super::error::{open_error, StoreError};
use super::files::{open_private, sibling};

#[cfg(unix)]
fn flock(file: &File, op: rustix::fs::FlockOperation) -> std::io::Result<()> {
    rustix::fs::flock(file, op).map_err(std::io::Error::from)
}

#[cfg(not(unix))]
fn flock(_file: &File, _op: ()) -> std::io::Result<()> {
    Ok(())
}

#[cfg(unix)]
use rustix::fs::FlockOperation as Op;

/// What the state file says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct State {
    /// The highest sequence number ever acknowledged (`None`: no state file
    /// yet).
    pub hwm: Option<i64>,
    /// Whether the last process to close the store closed it cleanly.
    pub clean: bool,
}

const STATE_LEN: usize = 64;

/// The locks and state file of an open store.
#[derive(Debug)]
pub(super) struct Presence {
    gate: Option<File>,
    state: Option<File>,
    lock_path: PathBuf,
    /// No other process had the store open when this one opened it.
    pub alone: bool,
    /// What the state file said at open.
    pub found: State,
}

impl Presence {
    /// Takes the gate, then this process's place among the store's users.
    /// `alone` tells whether any other process has it open. Without a
    /// writable folder (a read-only inspection), works without locks.
    pub fn enter(path: &Path, read_only: bool) -> Result<Presence, StoreError> {
        let lock_path = sibling(path, "-lock");
        let state_path = sibling(path, "-state");
        let open = |p: &Path| -> std::io::Result<File> {
            if read_only {
                // Never created here: a store no writer opened has none.
                OpenOptions::new().read(true).open(p)
            } else {
                open_private(p)
            }
        };
        let (gate, state) = match (open(&lock_path), open(&state_path)) {
            (Ok(g), Ok(s)) => (g, s),
            (Err(e), _) | (_, Err(e)) if read_only => {
                tracing::debug!(path = %path.display(), error = %e, "no lock files; inspecting without locks");
                return Ok(Presence {
                    gate: None,
                    state: None,
                    lock_path,
                    alone: false,
                    found: State::default(),
                });
            }
            (Err(e), _) | (_, Err(e)) => return Err(open_error(path, e)),
        };
        #[cfg(unix)]
        {
            flock(&gate, Op::LockExclusive).map_err(|e| open_error(path, e))?;
        }
        #[cfg(unix)]
        let alone = match flock(&state, Op::NonBlockingLockExclusive) {
            Ok(()) => true,
            Err(_) => {
                flock(&state, Op::LockShared).map_err(|e| open_error(path, e))?;
                false
            }
        };
        #[cfg(not(unix))]
        let alone = true;
        let found = read_state(&state);
        Ok(Presence {
            gate: Some(gate),
            state: Some(state),
            lock_path,
            alone,
            found,
        })
    }

    /// Whether this process holds the gate and no other process has the
    /// store open: the only time repair may run.
    pub fn exclusive(&self) -> bool {
        self.alone && self.gate.is_some()
    }

    /// Ends the opening: keeps a shared place, lets others in.
    pub fn opened(&mut self) {
        #[cfg(unix)]
        if let Some(state) = &self.state {
            if self.alone {
                // A conversion under the gate: nobody can slip in between.
                let _ = flock(state, Op::LockShared);
            }
        }
        if let Some(gate) = self.gate.take() {
            #[cfg(unix)]
            let _ = flock(&gate, Op::Unlock);
            drop(gate);
        }
    }

    /// A handle on the state file for the writer to record the high-water
    /// mark (`None` without one).
    pub fn state_writer(&self) -> Option<StateWriter> {
        self.state
            .as_ref()
            .and_then(|f| f.try_clone().ok())
            .map(StateWriter)
    }

    /// Leaves: the last process to close a store it closed cleanly marks
    /// the close clean.
    pub fn leave(mut self, clean: bool) {
        let Some(state) = self.state.take() else {
            return;
        };
        // Still opening (an open that failed): the gate is already held.
        let gate = self.gate.take().or_else(|| {
            let gate = open_private(&self.lock_path).ok()?;
            #[cfg(unix)]
            let _ = flock(&gate, Op::LockExclusive);
            Some(gate)
        });
        #[cfg(unix)]
        let last = flock(&state, Op::NonBlockingLockExclusive).is_ok();
        #[cfg(not(unix))]
        let last = true;
        if last && clean {
            let hwm = read_state(&state).hwm;
            write_state(&state, hwm, true);
        }
        drop(state);
        drop(gate);
    }
}

/// Writes the high-water mark after each commit.
#[derive(Debug)]
pub(super) struct StateWriter(File);

impl StateWriter {
    /// Records `hwm`, with the store marked open (not cleanly closed).
    pub fn record(&self, hwm: i64) {
        write_state(&self.0, Some(hwm), false);
    }
}

fn read_state(file: &File) -> State {
    let mut buf = [0u8; STATE_LEN];
    #[cfg(unix)]
    let read = std::os::unix::fs::FileExt::read_at(file, &mut buf, 0).unwrap_or(0);
    #[cfg(not(unix))]
    let read = {
        let _ = file;
        0
    };
    let text = String::from_utf8_lossy(&buf[..read]);
    let mut state = State::default();
    for word in text.split_whitespace() {
        if let Some(v) = word.strip_prefix("hwm=") {
            state.hwm = v.parse().ok();
        } else if let Some(v) = word.strip_prefix("clean=") {
            state.clean = v == "1";
        }
    }
    state
}

fn write_state(file: &File, hwm: Option<i64>, clean: bool) {
    let text = format!(
        "events-store-state hwm={} clean={}",
        hwm.unwrap_or(0),
        u8::from(clean)
    );
    let mut buf = [b' '; STATE_LEN];
    let n = text.len().min(STATE_LEN - 1);
    buf[..n].copy_from_slice(&text.as_bytes()[..n]);
    buf[STATE_LEN - 1] = b'\n';
    #[cfg(unix)]
    let _ = std::os::unix::fs::FileExt::write_all_at(file, &buf, 0);
    #[cfg(not(unix))]
    let _ = (file, buf);
}

/// Marks the state of a store being opened: open (not clean), `hwm` kept.
pub(super) fn mark_open(presence: &Presence, hwm: Option<i64>) {
    if let Some(state) = &presence.state {
        write_state(state, hwm, false);
    }
}
