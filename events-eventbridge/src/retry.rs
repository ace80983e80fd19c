//! The retry policy for per-entry failures (`ThrottlingException`,
//! `InternalFailure`): exponential backoff with full jitter, within a
//! bounded number of attempts and a bounded time.
//!
//! Call-level failures are the SDK's to retry (its own retry configuration,
//! e.g. `AWS_MAX_ATTEMPTS`); what still fails after them fails over.

use std::time::Duration;

/// The per-entry error codes worth sending again; every other code is
/// permanent (SPEC §8).
pub const RETRYABLE_CODES: [&str; 2] = ["ThrottlingException", "InternalFailure"];

/// Whether a per-entry error code is worth sending again.
pub fn is_retryable(code: &str) -> bool {
    RETRYABLE_CODES.contains(&code)
}

/// How retryable entries are sent again.
///
/// Attempt `n` (the first re-send is attempt 2) waits a random time in
/// `[0, min(max_delay, base_delay × 2^(n-2))]` ("full jitter"). Entries still
/// failing after `max_attempts` sends, or when the next wait would end past
/// `max_elapsed` since the first send, are given back as retryable failures
/// (the bus keeps them in its failover store).
///
/// ```
/// use std::time::Duration;
/// use events_eventbridge::RetryPolicy;
///
/// let policy = RetryPolicy::default();
/// assert_eq!(policy.max_attempts, 5);
/// assert_eq!(policy.delay_cap(2), Duration::from_millis(100));
/// assert_eq!(policy.delay_cap(4), Duration::from_millis(400));
/// assert_eq!(policy.delay_cap(30), Duration::from_secs(5));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Sends of one entry at most, the first included (1 = never re-send).
    pub max_attempts: u32,
    /// The cap of the first re-send's wait.
    pub base_delay: Duration,
    /// The largest cap of any wait.
    pub max_delay: Duration,
    /// No wait ends later than this after the first send.
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
            max_elapsed: Duration::from_secs(20),
        }
    }
}

impl RetryPolicy {
    /// A policy that never re-sends.
    pub fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The longest wait before attempt `attempt` (2 for the first re-send).
    pub fn delay_cap(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(2).min(31);
        self.base_delay
            .checked_mul(1u32 << exponent)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }

    /// A random wait before attempt `attempt`, uniform in `[0, delay_cap]`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let cap = self.delay_cap(attempt);
        let nanos = u64::try_from(cap.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(fastrand::u64(0..=nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_throttling_and_internal_failure_are_retryable() {
        assert!(is_retryable("ThrottlingException"));
        assert!(is_retryable("InternalFailure"));
        for code in [
            "AccessDeniedException",
            "ValidationException",
            "MalformedDetail",
            "",
        ] {
            assert!(!is_retryable(code), "{code}");
        }
    }

    #[test]
    fn caps_double_up_to_the_maximum() {
        let p = RetryPolicy::default();
        let caps: Vec<u64> = (2..10).map(|a| p.delay_cap(a).as_millis() as u64).collect();
        assert_eq!(caps, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        assert_eq!(p.delay_cap(u32::MAX), Duration::from_secs(5));
    }

    #[test]
    fn delays_are_jittered_within_the_cap() {
        let p = RetryPolicy::default();
        let delays: Vec<Duration> = (0..200).map(|_| p.delay(4)).collect();
        assert!(delays.iter().all(|d| *d <= Duration::from_millis(400)));
        // Full jitter: spread over the whole range, not clustered at the cap.
        assert!(delays.iter().any(|d| *d < Duration::from_millis(100)));
        assert!(delays.iter().any(|d| *d > Duration::from_millis(300)));
    }
}
