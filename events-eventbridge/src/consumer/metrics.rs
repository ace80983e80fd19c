//! The consumers' metrics: each processed message counted as received, then as deleted (done with) or left for redrive (names in `events_core::metrics`).

use events_core::metrics::{self as m, label};

use super::Processed;

/// Counts one processed message (SQS, Lambda or HTTP alike).
pub(super) fn record(processed: &Processed) {
    let (event, done, why) = match processed {
        Processed::Handled { name, .. } => (name.as_str(), true, "handled"),
        Processed::Duplicate { name, .. } => (name.as_str(), true, "duplicate"),
        Processed::Unrouted { name, .. } => (name.as_str(), true, "unrouted"),
        Processed::Failed { name, .. } => (name.as_str(), false, "failed"),
        Processed::Undecodable { .. } => (label::UNKNOWN_EVENT, false, "undecodable"),
    };
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
