//! Running discovered handlers in a test, and asserting their outcomes.
//! (A [`RecordingBus`](super::RecordingBus) runs its own handlers, discovered
//! and registered: `bus.run_handlers(..)`, `bus.run_handler(..)`.)

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::FutureExt;

use super::render;
use crate::bus::{EventBus, HandlerOutcome, HandlerStatus};
use crate::config::Mode;
use crate::envelope::{Event, SharedEvent};
use crate::event::DomainEvent;
use crate::handler::{discovered_handlers, HandlerEntry};

/// Runs every **discovered** handler of `E` (`#[handler]`) on `event`, in
/// dispatch order, and returns each one's outcome. Errors and panics are
/// isolated, as on the bus: they are outcomes, not test failures.
///
/// The handlers run through a real bus (no store, handlers awaited), so the
/// order, names and outcomes are the ones a `publish` reports.
///
/// Handlers registered explicitly (`register_handler(..)`, built with their
/// dependencies) live on a bus, not in the program: build a
/// [`RecordingBus`](super::RecordingBus) with them and call
/// [`bus.run_handlers(event)`](super::RecordingBus::run_handlers), which runs
/// the discovered and the registered ones.
///
/// # Panics
///
/// If the bus cannot be built (two types claim one event name).
pub async fn run_handlers<E: DomainEvent>(event: impl Into<Event<E>>) -> Vec<HandlerOutcome> {
    let bus = EventBus::builder()
        .mode(Mode::Local)
        .enabled(true)
        .async_handlers(false)
        .without_store()
        .dispatch_in_process(true)
        .build();
    let bus = match bus {
        Ok(bus) => bus,
        Err(e) => panic!("cannot build a bus to run the handlers: {e}"),
    };
    match bus.publish(event).await {
        Ok(outcome) => outcome.handlers().to_vec(),
        // A bus without a store or publisher delivers in process only.
        Err(e) => panic!("cannot dispatch the event to its handlers: {e}"),
    }
}

/// Runs one discovered handler of `E` on `event` and returns its outcome
/// (errors and panics isolated, as on the bus).
///
/// `name` is the handler's full name (`my_crate::handlers::send_welcome_email`)
/// or its last segments (`send_welcome_email`, `handlers::send_welcome_email`).
/// A registered handler: [`RecordingBus::run_handler`](super::RecordingBus::run_handler).
///
/// # Panics
///
/// If no handler of `E` has that name, or several do; the message lists the
/// handlers of `E`.
pub async fn run_handler<E: DomainEvent>(name: &str, event: impl Into<Event<E>>) -> HandlerOutcome {
    let discovered: Vec<HandlerEntry> = discovered_handlers()
        .filter(|h| h.event_name() == E::EVENT_NAME)
        .map(|h| h.entry())
        .collect();
    let entry = find_handler::<E>(&discovered, name, "discovered handler");
    run_entry::<E>(entry, event.into()).await
}

/// Runs the handler `entry` of `E` on `event`, errors and panics isolated.
pub(crate) async fn run_entry<E: DomainEvent>(
    entry: &HandlerEntry,
    event: Event<E>,
) -> HandlerOutcome {
    let event: SharedEvent = Arc::new(event);
    let status = match std::panic::catch_unwind(AssertUnwindSafe(|| entry.handler.call(event))) {
        Ok(Ok(future)) => match AssertUnwindSafe(future).catch_unwind().await {
            Ok(Ok(())) => HandlerStatus::Succeeded,
            Ok(Err(e)) => HandlerStatus::Failed(e.to_string()),
            Err(panic) => HandlerStatus::Panicked(panic_message(&*panic)),
        },
        Ok(Err(_)) => HandlerStatus::Failed(format!(
            "internal error: handler `{}` expects `{}`, not `{}`",
            entry.name,
            entry.event_type_name,
            std::any::type_name::<E>()
        )),
        Err(panic) => HandlerStatus::Panicked(panic_message(&*panic)),
    };
    HandlerOutcome {
        handler: entry.name.clone(),
        status,
    }
}

/// Whether `full` is `name` or ends with `::name`.
pub(crate) fn name_matches(full: &str, name: &str) -> bool {
    full == name
        || full
            .strip_suffix(name)
            .is_some_and(|rest| rest.ends_with("::"))
}

/// The one handler of `E` among `entries` whose name matches `name`;
/// `kind` says what `entries` are in the message ("discovered handler").
pub(crate) fn find_handler<'a, E: DomainEvent>(
    entries: &'a [HandlerEntry],
    name: &str,
    kind: &str,
) -> &'a HandlerEntry {
    let mut of_event: Vec<&HandlerEntry> = entries
        .iter()
        .filter(|h| h.event_name == E::EVENT_NAME)
        .collect();
    of_event.sort_by(|a, b| a.name.cmp(&b.name));
    let found: Vec<_> = of_event
        .iter()
        .copied()
        .filter(|h| name_matches(&h.name, name))
        .collect();
    match found[..] {
        [one] => one,
        _ => {
            let list: Vec<String> = of_event.iter().map(|h| format!("  {}", h.name)).collect();
            let list = if list.is_empty() {
                "  (none: is the crate with its handlers linked? `use my_handlers as _;`)"
                    .to_owned()
            } else {
                list.join("\n")
            };
            let problem = if found.is_empty() {
                format!("no {kind}")
            } else {
                format!("several {kind}s")
            };
            panic!(
                "{problem} of `{}` named `{name}`; its handlers:\n{list}",
                E::EVENT_NAME
            )
        }
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

/// Asserts that at least one handler ran and every one succeeded.
///
/// # Panics
///
/// If a handler failed or panicked (the message lists every outcome), or if
/// none ran (usually: the crate with the handlers is not linked).
#[track_caller]
pub fn assert_handlers_succeeded(outcomes: &[HandlerOutcome]) {
    if outcomes.is_empty() {
        panic!(
            "expected handlers to run and succeed; none ran (is the crate with the handlers linked? \
             `use my_handlers as _;`; handlers registered with `register_handler` run with \
             `bus.run_handlers(..)` on the `RecordingBus` they are registered on)"
        );
    }
    let failed = outcomes
        .iter()
        .filter(|o| o.status != HandlerStatus::Succeeded)
        .count();
    if failed == 0 {
        return;
    }
    let lines: Vec<String> = outcomes
        .iter()
        .map(|o| {
            let mark = if o.status == HandlerStatus::Succeeded {
                "  "
            } else {
                "✗ "
            };
            format!("  {mark}{}", render::outcome_line(o))
        })
        .collect();
    panic!(
        "expected every handler to succeed; {failed} of {} did not:\n{}",
        outcomes.len(),
        lines.join("\n")
    )
}
