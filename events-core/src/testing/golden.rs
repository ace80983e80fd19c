//! Golden wire fixtures: an event's SPEC §4 form, written to a file once
//! and compared on every run afterwards.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::envelope::{Event, EventId, RawEvent};
use crate::event::DomainEvent;
use crate::wire;

/// The variable that rewrites golden files instead of comparing them.
pub const UPDATE_GOLDEN_VAR: &str = "EVENTS_UPDATE_GOLDEN";

/// `payload` with a fixed identity (id `00000000-0000-7000-8000-000000000001`,
/// `occurred_on` 2026-01-01T00:00:00Z), so its wire form is the same on
/// every run: the event to give [`assert_wire_golden`].
pub fn fixed_event<E: DomainEvent>(payload: E) -> Event<E> {
    let at = DateTime::<Utc>::from_timestamp(1_767_225_600, 0).unwrap_or_default();
    Event::with_identity(
        EventId::from("00000000-0000-7000-8000-000000000001"),
        at,
        payload,
    )
}

/// The golden text of an event: its `Detail` (SPEC §4: `id`, `type`,
/// `occurred_on`, and `attributes` as a JSON string, exactly as sent), one
/// field a line.
fn render(raw: &RawEvent) -> String {
    let field = |s: &str| serde_json::to_string(s).unwrap_or_default();
    format!(
        "{{\n  \"id\": {},\n  \"type\": {},\n  \"occurred_on\": {},\n  \"attributes\": {}\n}}\n",
        field(raw.id.as_str()),
        field(&raw.name),
        field(&wire::format_time(raw.occurred_on)),
        field(&raw.attributes)
    )
}

fn truthy(var: &str) -> bool {
    std::env::var(var).is_ok_and(|v| {
        let v = v.trim().to_ascii_lowercase();
        !v.is_empty() && v != "0" && v != "false" && v != "no" && v != "off"
    })
}

/// `path` as given if absolute, else under the package being tested
/// (`CARGO_MANIFEST_DIR`, which cargo sets for tests), else under the
/// current directory.
fn resolve(path: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_owned();
    }
    match std::env::var_os("CARGO_MANIFEST_DIR") {
        Some(dir) => Path::new(&dir).join(path),
        None => path.to_owned(),
    }
}

/// Asserts that the wire form of `event` (its SPEC §4 `Detail`, as
/// EventBridge receives it and Python's `package-events-bus` reads it) is
/// the one in the golden file at `path`: a renamed, added or removed field,
/// or a changed format, fails the test with a field-by-field diff. The
/// golden file is the contract with every consumer of the event.
///
/// - A relative `path` is under the package's directory
///   (`tests/golden/company_created.json`).
/// - A missing file is written and the test passes (commit the file), except
///   under CI (`CI` set), where a missing file fails.
/// - `EVENTS_UPDATE_GOLDEN=1 cargo test` rewrites the files of changed
///   events (after a change you intend; review the diff).
///
/// On a difference, the message also says whether the golden event still
/// decodes as `E` (whether events already sent in the old form can still be
/// read).
///
/// Give it an event with a fixed identity ([`fixed_event`]), or the id and
/// time would change on every run.
///
/// ```
/// use events_core::testing::{assert_wire_golden, fixed_event};
/// # #[derive(events_core::DomainEvent, Debug, Clone)]
/// # #[event(company = "acme", service = "shop", version = 1, resource = "order", action = "placed")]
/// # struct OrderPlaced { total: u64 }
/// # let dir = tempfile::tempdir().unwrap();
/// # let path = dir.path().join("order_placed.json");
/// # std::env::remove_var("CI"); // a first run, as on a laptop: the file is written
/// // path = "tests/golden/order_placed.json"
/// assert_wire_golden(&path, &fixed_event(OrderPlaced { total: 10 }));
/// assert_eq!(
///     std::fs::read_to_string(&path).unwrap(),
///     r#"{
///   "id": "00000000-0000-7000-8000-000000000001",
///   "type": "acme.shop.1.event.order.placed",
///   "occurred_on": "2026-01-01T00:00:00.000000+00:00",
///   "attributes": "{\"total\":10}"
/// }
/// "#
/// );
/// ```
///
/// # Panics
///
/// If the wire form differs from the file, the event cannot be serialized,
/// or the file cannot be read or written.
#[track_caller]
pub fn assert_wire_golden<E: DomainEvent>(path: impl AsRef<Path>, event: &Event<E>) {
    let shown = path.as_ref().display().to_string();
    let path = resolve(path.as_ref());
    let raw = match RawEvent::from_event(event) {
        Ok(raw) => raw,
        Err(e) => panic!("cannot write the wire form of `{}`: {e}", E::EVENT_NAME),
    };
    let now = render(&raw);
    let write = |why: &str| {
        if let Some(dir) = path.parent() {
            if let Err(e) = std::fs::create_dir_all(dir) {
                panic!("cannot create {}: {e}", dir.display());
            }
        }
        if let Err(e) = std::fs::write(&path, &now) {
            panic!("cannot write the golden file {}: {e}", path.display());
        }
        eprintln!("{why} the golden file {}", path.display());
    };
    if truthy(UPDATE_GOLDEN_VAR) {
        let same = std::fs::read_to_string(&path).is_ok_and(|old| normalize(&old) == now);
        if !same {
            write("rewrote");
        }
        return;
    }
    let golden = match std::fs::read_to_string(&path) {
        Ok(text) => normalize(&text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if truthy("CI") {
                panic!(
                    "the golden file {shown} of `{}` is missing; run `{UPDATE_GOLDEN_VAR}=1 cargo test` \
                     and commit it",
                    E::EVENT_NAME
                );
            }
            write("wrote");
            return;
        }
        Err(e) => panic!("cannot read the golden file {}: {e}", path.display()),
    };
    if golden == now {
        return;
    }
    let diff = field_diff(&golden, &now);
    let compat = match wire::decode_detail(&golden).and_then(|r| r.decode::<E>()) {
        Ok(_) => format!(
            "the golden event still decodes as `{}`",
            std::any::type_name::<E>()
        ),
        Err(e) => format!(
            "the golden event no longer decodes as `{}`: {e}",
            std::any::type_name::<E>()
        ),
    };
    panic!(
        "the wire form of `{}` differs from its golden file {shown} (- golden, + now):\n{diff}\n\
         {compat}.\nIf the change is intended, run `{UPDATE_GOLDEN_VAR}=1 cargo test` and review the \
         file's diff.",
        E::EVENT_NAME
    )
}

fn normalize(text: &str) -> String {
    let mut text = text.replace("\r\n", "\n");
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

/// The fields of a golden text, in file order, if it is a JSON object.
fn fields(text: &str) -> Option<Vec<(String, Value)>> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Some(ordered(map, text)),
        _ => None,
    }
}

/// The entries of `map` in the order their keys first appear in `text`
/// (serde_json's map sorts them).
fn ordered(map: Map<String, Value>, text: &str) -> Vec<(String, Value)> {
    let mut entries: Vec<(String, Value)> = map.into_iter().collect();
    entries.sort_by_key(|(k, _)| {
        let quoted = serde_json::to_string(k).unwrap_or_default();
        text.find(&quoted).unwrap_or(usize::MAX)
    });
    entries
}

/// The attributes of a detail as fields, when they are a JSON object text.
fn attribute_fields(value: &Value) -> Option<Vec<(String, Value)>> {
    let text = value.as_str()?;
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Some(ordered(map, text)),
        _ => None,
    }
}

fn field_diff(golden: &str, now: &str) -> String {
    let (Some(old), Some(new)) = (fields(golden), fields(now)) else {
        return line_diff(golden, now);
    };
    let mut lines = Vec::new();
    diff_entries(&old, &new, "", &mut lines, true);
    if lines.is_empty() {
        return line_diff(golden, now);
    }
    lines.join("\n")
}

fn diff_entries(
    old: &[(String, Value)],
    new: &[(String, Value)],
    prefix: &str,
    lines: &mut Vec<String>,
    top: bool,
) {
    let get = |list: &[(String, Value)], key: &str| {
        list.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    };
    let mut keys: Vec<&str> = old.iter().map(|(k, _)| k.as_str()).collect();
    for (k, _) in new {
        if !keys.contains(&k.as_str()) {
            keys.push(k);
        }
    }
    for key in keys {
        let (a, b) = (get(old, key), get(new, key));
        if a == b {
            continue;
        }
        if top && key == "attributes" {
            if let (Some(a), Some(b)) = (&a, &b) {
                if let (Some(fa), Some(fb)) = (attribute_fields(a), attribute_fields(b)) {
                    let before = lines.len();
                    diff_entries(&fa, &fb, "attributes.", lines, false);
                    if lines.len() > before {
                        continue;
                    }
                    // Same fields and values, different text (order, format).
                }
            }
        }
        if let Some(a) = a {
            lines.push(format!("  - {prefix}{key}: {a}"));
        }
        if let Some(b) = b {
            lines.push(format!("  + {prefix}{key}: {b}"));
        }
    }
}

fn line_diff(golden: &str, now: &str) -> String {
    let old: Vec<&str> = golden.lines().collect();
    let new: Vec<&str> = now.lines().collect();
    super::render::diff(old.len(), new.len(), |i, j| old[i] == new[j])
        .into_iter()
        .map(|step| match step {
            super::render::Step::Same(i, _) => format!("    {}", old[i]),
            super::render::Step::Missing(i) => format!("  - {}", old[i]),
            super::render::Step::Extra(j) => format!("  + {}", new[j]),
        })
        .collect::<Vec<_>>()
        .join("\n")
}
