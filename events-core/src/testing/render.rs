//! How the kit shows events and outcomes in failure messages, and the
//! sequence diff its messages are built on.

use std::fmt::Write as _;

use crate::bus::{HandlerOutcome, HandlerStatus};
use crate::envelope::RawEvent;

/// Attributes longer than this are cut in messages.
const MAX_ATTRIBUTES: usize = 400;

/// `name id=… {attributes}`: one event on one line.
pub(crate) fn event_line(event: &RawEvent) -> String {
    let attributes = &event.attributes;
    if attributes.len() <= MAX_ATTRIBUTES {
        return format!("{} id={} {}", event.name, event.id, attributes);
    }
    let mut cut = MAX_ATTRIBUTES;
    while !attributes.is_char_boundary(cut) {
        cut -= 1;
    }
    format!(
        "{} id={} {}… ({} bytes)",
        event.name,
        event.id,
        &attributes[..cut],
        attributes.len()
    )
}

/// The numbered list of `events`, one per line, each line indented by two
/// spaces; `  (nothing)` when empty.
pub(crate) fn event_list(events: &[RawEvent]) -> String {
    if events.is_empty() {
        return "  (nothing)".to_owned();
    }
    let mut out = String::new();
    for (i, event) in events.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let _ = write!(out, "  {}. {}", i + 1, event_line(event));
    }
    out
}

/// A handler status in words: `succeeded`, `failed: …`, `panicked: …`.
pub(crate) fn status(status: &HandlerStatus) -> String {
    match status {
        HandlerStatus::Succeeded => "succeeded".to_owned(),
        HandlerStatus::Failed(error) => format!("failed: {error}"),
        HandlerStatus::Panicked(panic) => format!("panicked: {panic}"),
    }
}

/// `name: status`.
pub(crate) fn outcome_line(outcome: &HandlerOutcome) -> String {
    format!("{}: {}", outcome.handler, status(&outcome.status))
}

/// One step of a sequence diff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// `expected[i]` matched `actual[j]`.
    Same(usize, usize),
    /// `expected[i]` is missing from the actual sequence.
    Missing(usize),
    /// `actual[j]` was not expected.
    Extra(usize),
}

/// The shortest edit from `expected` to `actual` (a longest common
/// subsequence), with `eq(i, j)` telling whether `expected[i]` matches
/// `actual[j]`. The sequences are a test's events: short.
pub(crate) fn diff(
    expected: usize,
    actual: usize,
    mut eq: impl FnMut(usize, usize) -> bool,
) -> Vec<Step> {
    let (n, m) = (expected, actual);
    let mut same = vec![vec![false; m]; n];
    for (i, row) in same.iter_mut().enumerate() {
        for (j, cell) in row.iter_mut().enumerate() {
            *cell = eq(i, j);
        }
    }
    // lcs[i][j]: the longest common subsequence of expected[i..], actual[j..].
    let mut lcs = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if same[i][j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut steps = Vec::with_capacity(n.max(m));
    while i < n || j < m {
        if i < n && j < m && same[i][j] {
            steps.push(Step::Same(i, j));
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            // What was expected comes before what came instead.
            steps.push(Step::Missing(i));
            i += 1;
        } else {
            steps.push(Step::Extra(j));
            j += 1;
        }
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(expected: &[&str], actual: &[&str]) -> Vec<Step> {
        diff(expected.len(), actual.len(), |i, j| {
            expected[i] == actual[j]
        })
    }

    #[test]
    fn equal_sequences_are_all_same() {
        assert_eq!(
            run(&["a", "b"], &["a", "b"]),
            [Step::Same(0, 0), Step::Same(1, 1)]
        );
    }

    #[test]
    fn a_replacement_shows_the_expected_then_the_actual() {
        assert_eq!(
            run(&["a", "b", "c"], &["a", "x", "c"]),
            [
                Step::Same(0, 0),
                Step::Missing(1),
                Step::Extra(1),
                Step::Same(2, 2)
            ]
        );
    }

    #[test]
    fn missing_and_extra_at_the_ends() {
        assert_eq!(run(&["a"], &[]), [Step::Missing(0)]);
        assert_eq!(run(&[], &["a"]), [Step::Extra(0)]);
        assert_eq!(
            run(&["a", "b"], &["b", "c"]),
            [Step::Missing(0), Step::Same(1, 0), Step::Extra(1)]
        );
    }

    #[test]
    fn long_attributes_are_cut_on_a_char_boundary() {
        let event = RawEvent {
            id: "e1".into(),
            name: "acme.shop.1.event.order.placed".into(),
            occurred_on: crate::envelope::now(),
            attributes: format!("{{\"note\":\"{}\"}}", "é".repeat(300)),
            trace: None,
        };
        let line = event_line(&event);
        assert!(line.starts_with("acme.shop.1.event.order.placed id=e1 {\"note\":\"éé"));
        assert!(line.ends_with("… (611 bytes)"), "{line}");
    }
}
