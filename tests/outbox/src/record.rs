//! `AppendIds`: a handler appending each event's id to a file, one line each, before it returns.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use events_core::{Event, Handler, HandlerResult};

use crate::Numbered;

/// Appends `{id}\n` to its file for every event it handles, in one
/// `write` (O_APPEND), before returning: once the bus reports the event
/// accepted, its id is in the file.
#[derive(Debug)]
pub struct AppendIds {
    file: Mutex<File>,
}

impl AppendIds {
    /// Opens (creates) `path` for appending.
    ///
    /// # Errors
    ///
    /// When the file cannot be opened.
    pub fn open(path: &Path) -> std::io::Result<AppendIds> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(AppendIds {
            file: Mutex::new(file),
        })
    }
}

impl Handler<Numbered> for AppendIds {
    async fn handle(&self, event: &Event<Numbered>) -> HandlerResult {
        let line = format!("{}\n", event.id().as_str());
        let mut file = self
            .file
            .lock()
            .map_err(|_| "the record file's lock is poisoned")?;
        file.write_all(line.as_bytes())?;
        Ok(())
    }
}

/// The ids in a file written by [`AppendIds`], in the order handled (a
/// missing file is empty; an incomplete last line, from a process killed
/// mid-write, is left out).
pub fn read_ids(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    complete
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}
