//! Batch planning: which events go together into one PutEvents call
//! (SPEC §8).
//!
//! A call carries 1 to [`MAX_ENTRIES`] entries whose sizes (as AWS counts
//! them, [`wire::Entry::size`](events_core::wire::Entry::size)) add up to at
//! most the request size limit. An entry that alone exceeds the limit can
//! never be sent: it is put aside, never planned.

/// The most entries one PutEvents call accepts.
pub const MAX_ENTRIES: usize = 10;

/// AWS's default PutEvents request size limit: 256 KiB.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 256 * 1024;

/// The largest request size limit AWS can be configured to: 1 MiB.
pub const MAX_REQUEST_BYTES: usize = 1024 * 1024;

/// The smallest request size limit accepted (1 KiB): below it no real event
/// fits (its name alone may be 128 bytes), so a smaller setting would only
/// dead-letter every event.
pub const MIN_REQUEST_BYTES: usize = 1024;

/// The plan for a list of entries: the calls to make and the entries that
/// fit in none.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// Each call's entries, as indices into the caller's list, in order.
    pub calls: Vec<Vec<usize>>,
    /// Entries larger than the limit on their own (never sent).
    pub too_large: Vec<usize>,
}

/// Plans calls for entries of `sizes` (in bytes) under `max_bytes` per call.
///
/// Greedy in the caller's order: an entry joins the current call while it
/// has fewer than [`MAX_ENTRIES`] entries and the sizes stay within
/// `max_bytes`, else it starts the next call. For a list cut into
/// consecutive runs this makes the fewest calls.
///
/// ```
/// use events_eventbridge::batch::plan;
///
/// // 25 small entries: 10 + 10 + 5.
/// let p = plan(&[100; 25], 256 * 1024);
/// assert_eq!(p.calls.iter().map(Vec::len).collect::<Vec<_>>(), [10, 10, 5]);
///
/// // Three entries of 100 KiB under 256 KiB: split by size, not count.
/// let p = plan(&[100 * 1024; 3], 256 * 1024);
/// assert_eq!(p.calls, [vec![0, 1], vec![2]]);
///
/// // An entry larger than the limit is never planned.
/// let p = plan(&[10, 300 * 1024, 10], 256 * 1024);
/// assert_eq!(p.calls, [vec![0, 2]]);
/// assert_eq!(p.too_large, [1]);
/// ```
pub fn plan(sizes: &[usize], max_bytes: usize) -> Plan {
    let mut plan = Plan::default();
    let mut current: Vec<usize> = Vec::new();
    let mut bytes = 0usize;
    for (index, &size) in sizes.iter().enumerate() {
        if size > max_bytes {
            plan.too_large.push(index);
            continue;
        }
        if current.len() == MAX_ENTRIES || bytes + size > max_bytes {
            plan.calls.push(std::mem::take(&mut current));
            bytes = 0;
        }
        current.push(index);
        bytes += size;
    }
    if !current.is_empty() {
        plan.calls.push(current);
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn empty_input_plans_no_call() {
        assert_eq!(plan(&[], DEFAULT_MAX_REQUEST_BYTES), Plan::default());
    }

    #[test]
    fn counts_of_the_done_when_list() {
        for (n, calls) in [(1, 1), (10, 1), (11, 2), (25, 3), (1000, 100)] {
            let p = plan(&vec![500; n], DEFAULT_MAX_REQUEST_BYTES);
            assert_eq!(p.calls.len(), calls, "{n} entries");
        }
    }

    #[test]
    fn an_entry_of_exactly_the_limit_is_sent_alone() {
        let p = plan(&[1, 1000, 1], 1000);
        assert_eq!(p.calls, [vec![0], vec![1], vec![2]]);
        assert!(p.too_large.is_empty());
    }

    proptest! {
        /// Any sizes, any limit: every call within both limits, every entry
        /// planned exactly once or put aside as too large, order kept.
        #[test]
        fn every_call_within_both_limits_and_order_kept(
            sizes in proptest::collection::vec(
                prop_oneof![1usize..2_000, 1usize..300_000, 200_000usize..1_100_000], 0..200),
            max_bytes in prop_oneof![Just(DEFAULT_MAX_REQUEST_BYTES), Just(MAX_REQUEST_BYTES), 1usize..MAX_REQUEST_BYTES],
        ) {
            let p = plan(&sizes, max_bytes);
            for call in &p.calls {
                prop_assert!(!call.is_empty());
                prop_assert!(call.len() <= MAX_ENTRIES);
                prop_assert!(call.iter().map(|&i| sizes[i]).sum::<usize>() <= max_bytes);
            }
            let sent: Vec<usize> = p.calls.iter().flatten().copied().collect();
            prop_assert!(sent.windows(2).all(|w| w[0] < w[1]), "order kept");
            let mut all: Vec<usize> = sent.iter().chain(&p.too_large).copied().collect();
            all.sort_unstable();
            prop_assert_eq!(all, (0..sizes.len()).collect::<Vec<_>>());
            for &i in &p.too_large {
                prop_assert!(sizes[i] > max_bytes);
            }
            // Greedy: each call's first entry did not fit in the call before it.
            for pair in p.calls.windows(2) {
                let first = sizes[pair[1][0]];
                let before: usize = pair[0].iter().map(|&i| sizes[i]).sum();
                prop_assert!(pair[0].len() == MAX_ENTRIES || before + first > max_bytes);
            }
        }
    }
}
