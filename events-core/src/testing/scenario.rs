//! [`Scenario`]: "when this runs, expect these events and these handler
//! outcomes", for use cases.

use std::future::Future;
use std::panic::Location;

use super::handlers::name_matches;
use super::recording::{Dispatched, RecordingBus};
use super::render::{self, Step};
use crate::bus::HandlerStatus;
use crate::envelope::{Event, RawEvent};
use crate::event::DomainEvent;

/// What a handler is expected to do, in a [`Scenario`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// Return `Ok` (or `()`).
    Succeeded,
    /// Return an error, any error.
    Failed,
    /// Return an error whose message contains this text.
    FailedWith(String),
    /// Panic.
    Panicked,
}

impl Expect {
    /// An error whose message contains `text`.
    pub fn failed_with(text: impl Into<String>) -> Self {
        Expect::FailedWith(text.into())
    }

    fn matches(&self, status: &HandlerStatus) -> bool {
        match (self, status) {
            (Expect::Succeeded, HandlerStatus::Succeeded) => true,
            (Expect::Failed, HandlerStatus::Failed(_)) => true,
            (Expect::FailedWith(text), HandlerStatus::Failed(e)) => e.contains(text.as_str()),
            (Expect::Panicked, HandlerStatus::Panicked(_)) => true,
            _ => false,
        }
    }

    fn describe(&self) -> String {
        match self {
            Expect::Succeeded => "succeeded".to_owned(),
            Expect::Failed => "failed".to_owned(),
            Expect::FailedWith(text) => format!("failed: …{text}…"),
            Expect::Panicked => "panicked".to_owned(),
        }
    }
}

type Check = Box<dyn Fn(&RawEvent) -> bool + Send + Sync>;

/// An expected event: its name and a condition on it.
struct ExpectedEvent {
    name: &'static str,
    check: Check,
    conditional: bool,
}

/// A handler expectation: a name (or its last segments) and an outcome.
struct ExpectedHandler {
    name: String,
    expect: Expect,
}

/// A use case under test: run it, then check that exactly the expected
/// events were published, in order, and (when asked) what their handlers
/// did, with a diff of expected against actual when not.
///
/// It is strict, for events and for handlers alike:
///
/// - **Events**: exactly the expected events, in order. An event published
///   and not expected fails the scenario (expect it with
///   [`expect_any`](Self::expect_any) if its attributes do not matter); a
///   scenario with no event expectation expects nothing published.
/// - **Handlers**: with no [`expect_handler`](Self::expect_handler), the
///   handlers do not run at all (the scenario checks events only). With at
///   least one, the scenario runs the handlers of every published event
///   (discovered and registered, as [`RecordingBus::dispatch_published`]
///   does) and every outcome must be expected: a handler that ran and was not
///   expected fails the scenario whatever its outcome, succeeded included, and
///   an expected handler that did not run fails it too.
///
/// A failure names the line of the test's `.when(..)` call (`scenario
/// failed at tests/orders.rs:42:10`), so with several scenarios in one test
/// the failing one is known. (The panic itself is raised while the returned
/// future is polled, inside the kit: `#[track_caller]` cannot cross an
/// `.await` on stable Rust, so the caller's line is in the message.)
///
/// ```
/// use events_core::testing::{Expect, RecordingBus, Scenario};
/// use events_core::{handler, DomainEvent, Event, EventBus};
///
/// #[derive(DomainEvent, Debug, Clone)]
/// #[event(company = "acme", service = "shop", version = 1, resource = "order", action = "placed")]
/// struct OrderPlaced { total: u64 }
///
/// #[handler]
/// async fn confirm_order(event: &OrderPlaced) -> Result<(), std::io::Error> {
///     Ok(())
/// }
///
/// async fn place_order(bus: &EventBus, total: u64) -> Result<u64, events_core::BusError> {
///     bus.publish(OrderPlaced { total }).await?;
///     Ok(total)
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let bus = RecordingBus::new();
/// let total = Scenario::new(&bus)
///     .expect_event(|e: &Event<OrderPlaced>| e.total == 10)
///     .expect_handler("confirm_order", Expect::Succeeded) // every handler that runs
///     .when(place_order(&bus, 10))
///     .await
///     .unwrap();
/// assert_eq!(total, 10);
/// # }
/// ```
#[must_use = "a scenario checks nothing until `.when(..).await`"]
pub struct Scenario {
    bus: RecordingBus,
    events: Vec<ExpectedEvent>,
    handlers: Vec<ExpectedHandler>,
}

impl std::fmt::Debug for Scenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scenario")
            .field(
                "events",
                &self.events.iter().map(|e| e.name).collect::<Vec<_>>(),
            )
            .field(
                "handlers",
                &self
                    .handlers
                    .iter()
                    .map(|h| (&h.name, &h.expect))
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Scenario {
    /// A scenario on `bus` (give the code under test
    /// [`bus.event_bus()`](RecordingBus::event_bus)). Without expectations it
    /// expects that nothing is published.
    pub fn new(bus: &RecordingBus) -> Self {
        Scenario {
            bus: bus.clone(),
            events: Vec::new(),
            handlers: Vec::new(),
        }
    }

    /// Expects, next in order, an `E` for which `matches` is true.
    ///
    /// The scenario panics if a published `E` does not decode as an `E`; the
    /// message names this line.
    #[track_caller]
    pub fn expect_event<E: DomainEvent>(
        mut self,
        matches: impl Fn(&Event<E>) -> bool + Send + Sync + 'static,
    ) -> Self {
        let expected_at = Location::caller();
        self.events.push(ExpectedEvent {
            name: E::EVENT_NAME,
            check: Box::new(move |raw: &RawEvent| match raw.decode::<E>() {
                Ok(event) => matches(&event),
                Err(e) => panic!(
                    "the published {} does not decode as `{}` (expected at {expected_at}): {e}",
                    render::event_line(raw),
                    std::any::type_name::<E>()
                ),
            }),
            conditional: true,
        });
        self
    }

    /// Expects, next in order, an `E`, whatever its attributes.
    pub fn expect_any<E: DomainEvent>(mut self) -> Self {
        self.events.push(ExpectedEvent {
            name: E::EVENT_NAME,
            check: Box::new(|_| true),
            conditional: false,
        });
        self
    }

    /// Expects the handler `name` (full name or last segments, as in
    /// [`run_handler`](super::run_handler)) to run on the published events
    /// with this outcome. With at least one handler expectation, the scenario
    /// runs the handlers of every event published (as
    /// [`RecordingBus::dispatch_published`] does), and every handler that
    /// runs must be expected: one that ran without an expectation fails the
    /// scenario, even if it succeeded. An expectation holds for every run of
    /// the handler (on each published event it handles).
    pub fn expect_handler(mut self, name: &str, expect: Expect) -> Self {
        self.handlers.push(ExpectedHandler {
            name: name.to_owned(),
            expect,
        });
        self
    }

    /// Runs `when` (the use case), checks the expectations and returns what
    /// `when` returned. Await the returned future.
    ///
    /// # Panics
    ///
    /// If an expectation fails: the message names the line of this call and
    /// shows the published events against the expected ones and, when
    /// handlers were expected, their outcomes against the expected ones (`-`
    /// expected, `+` actual). Also if handler outcomes are expected on a bus
    /// that runs handlers in `publish` (the scenario cannot see them there).
    #[track_caller]
    pub fn when<T, F>(self, when: F) -> impl Future<Output = T>
    where
        F: Future<Output = T>,
    {
        let caller = Location::caller();
        self.run(when, caller)
    }

    async fn run<T>(self, when: impl Future<Output = T>, caller: &'static Location<'static>) -> T {
        if !self.handlers.is_empty() && self.bus.runs_handlers_in_publish() {
            panic!(
                "a scenario with handler expectations needs a recording bus that runs handlers when the \
                 test asks (`RecordingBus::new()`); this one runs them in `publish`, where their outcomes \
                 go to the code under test (scenario at {caller})"
            );
        }
        let start = self.bus.recorded();
        let output = when.await;
        let end = self.bus.recorded();
        let published: Vec<RawEvent> = self
            .bus
            .published_raw()
            .get(start..end)
            .map(<[_]>::to_vec)
            .unwrap_or_default();

        let steps = render::diff(self.events.len(), published.len(), |i, j| {
            let expected = &self.events[i];
            published[j].name == expected.name && (expected.check)(&published[j])
        });
        let events_ok = steps.iter().all(|s| matches!(s, Step::Same(..)));

        let mut handler_lines = Vec::new();
        let mut handlers_ok = true;
        if !self.handlers.is_empty() {
            let dispatched = self.bus.dispatch_range(start, end).await;
            self.bus.mark_dispatched(end);
            handlers_ok = self.check_handlers(&dispatched, &mut handler_lines);
        }
        if events_ok && handlers_ok {
            return output;
        }

        let mut message =
            format!("scenario failed at {caller}:\nevents (- expected, + published):\n");
        if steps.is_empty() {
            message.push_str("    (none expected, none published)\n");
        }
        for step in &steps {
            let line = match *step {
                Step::Same(_, j) => format!("    {}", render::event_line(&published[j])),
                Step::Missing(i) => {
                    let expected = &self.events[i];
                    if expected.conditional {
                        format!("  - {} (matching the condition)", expected.name)
                    } else {
                        format!("  - {}", expected.name)
                    }
                }
                Step::Extra(j) => format!("  + {}", render::event_line(&published[j])),
            };
            message.push_str(&line);
            message.push('\n');
        }
        if !self.handlers.is_empty() {
            message.push_str("handler outcomes (- expected, + actual):\n");
            for line in &handler_lines {
                message.push_str(line);
                message.push('\n');
            }
        }
        panic!("{}", message.trim_end())
    }

    /// Compares the handlers' outcomes with the expectations; pushes one
    /// line per expectation and per unexpected outcome; `true` if all hold.
    fn check_handlers(&self, dispatched: &[Dispatched], lines: &mut Vec<String>) -> bool {
        let mut ok = true;
        let mut explained = vec![false; dispatched.iter().map(|d| d.outcomes.len()).sum()];
        let ran: Vec<(&RawEvent, &crate::bus::HandlerOutcome)> = dispatched
            .iter()
            .flat_map(|d| d.outcomes.iter().map(move |o| (&d.event, o)))
            .collect();
        for ExpectedHandler { name, expect } in &self.handlers {
            let mut seen = false;
            for (k, (event, outcome)) in ran.iter().enumerate() {
                if !name_matches(&outcome.handler, name) {
                    continue;
                }
                seen = true;
                explained[k] = true;
                let actual = format!(
                    "{} on {} id={}: {}",
                    outcome.handler,
                    event.name,
                    event.id,
                    render::status(&outcome.status)
                );
                if expect.matches(&outcome.status) {
                    lines.push(format!("    {actual}"));
                } else {
                    ok = false;
                    lines.push(format!("  - {}: {}", outcome.handler, expect.describe()));
                    lines.push(format!("  + {actual}"));
                }
            }
            if !seen {
                ok = false;
                lines.push(format!("  - {name}: {}", expect.describe()));
                lines.push(format!("  + {name}: did not run"));
            }
        }
        for (k, (event, outcome)) in ran.iter().enumerate() {
            if explained[k] {
                continue;
            }
            ok = false;
            lines.push(format!(
                "  + {} on {} id={}: {} (not expected)",
                outcome.handler,
                event.name,
                event.id,
                render::status(&outcome.status)
            ));
        }
        ok
    }
}
