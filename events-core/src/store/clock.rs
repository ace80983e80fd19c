//! The clock a store measures claim leases by: the system's, or one a test sets.

use std::sync::Arc;

use chrono::{DateTime, Utc};

/// Where a store reads the time its claims ([`EventStore::claim`](crate::store::EventStore::claim))
/// are measured by: the system clock by default, or a function given (a
/// test moving time forward to see a lease expire, without waiting for it).
///
/// ```
/// use std::sync::atomic::{AtomicI64, Ordering};
/// use std::sync::Arc;
/// use events_core::store::StoreClock;
///
/// let ahead_ms = Arc::new(AtomicI64::new(0));
/// let clock = {
///     let ahead_ms = ahead_ms.clone();
///     StoreClock::from_fn(move || {
///         chrono::Utc::now() + chrono::Duration::milliseconds(ahead_ms.load(Ordering::SeqCst))
///     })
/// };
/// let before = clock.now();
/// ahead_ms.store(3_600_000, Ordering::SeqCst);
/// assert!(clock.now() - before >= chrono::Duration::hours(1));
/// ```
#[derive(Clone, Default)]
pub struct StoreClock(Option<Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>>);

impl StoreClock {
    /// The system clock.
    pub fn system() -> StoreClock {
        StoreClock(None)
    }

    /// A clock that reads `now`.
    pub fn from_fn(now: impl Fn() -> DateTime<Utc> + Send + Sync + 'static) -> StoreClock {
        StoreClock(Some(Arc::new(now)))
    }

    /// The time now, by this clock.
    pub fn now(&self) -> DateTime<Utc> {
        match &self.0 {
            Some(now) => now(),
            None => Utc::now(),
        }
    }

    /// The time now in milliseconds since the Unix epoch (how the store
    /// keeps a claim's end).
    pub(crate) fn now_ms(&self) -> i64 {
        self.now().timestamp_millis()
    }
}

impl std::fmt::Debug for StoreClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.0 {
            None => "StoreClock::system()",
            Some(_) => "StoreClock::from_fn(..)",
        })
    }
}

/// Two clocks are equal when both are the system's or both are the same
/// function.
impl PartialEq for StoreClock {
    fn eq(&self, other: &StoreClock) -> bool {
        match (&self.0, &other.0) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Eq for StoreClock {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_clock_is_the_default_and_a_given_one_is_read() {
        assert_eq!(StoreClock::default(), StoreClock::system());
        let fixed = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap();
        let clock = StoreClock::from_fn(move || fixed);
        assert_eq!(clock.now(), fixed);
        assert_eq!(clock.now_ms(), 1_700_000_000_000);
        assert_eq!(clock, clock.clone());
        assert_ne!(clock, StoreClock::from_fn(move || fixed));
        assert_ne!(clock, StoreClock::system());
        let drift = (StoreClock::system().now() - Utc::now())
            .num_seconds()
            .abs();
        assert!(drift < 60, "{drift}");
        assert_eq!(format!("{clock:?}"), "StoreClock::from_fn(..)");
    }
}
