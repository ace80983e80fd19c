//! The consumers' metrics: each processed message counted as received, then as deleted (done with) or left for redrive (names in `events_core::metrics`).

use events_core::metrics::{self as m, label};

/// Counts one processed message (SQS, Lambda or HTTP alike) of `event`:
/// deleted (`done`) or left for redrive, `why` (the
/// [`Processed`](super::Processed) variant in lower case).
pub(super) fn record(event: &str, done: bool, why: &'static str) {
    let event = event.to_owned();
    ::metrics::counter!(m::CONSUMER_RECEIVED, label::EVENT => event.clone()).increment(1);
    if done {
        ::metrics::counter!(m::CONSUMER_DELETED, label::EVENT => event, label::OUTCOME => why)
            .increment(1);
    } else {
        ::metrics::counter!(m::CONSUMER_REDRIVE, label::EVENT => event, label::REASON => why)
            .increment(1);
    }
}
