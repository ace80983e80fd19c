//! Backoff delays: doubling, capped, with ±25 % jitter.

use std::time::Duration;

/// The delay after `failures` failures in a row (1 for the first): `base`
/// doubled for each further failure, capped at `max`, then multiplied by a
/// random factor in 0.75..1.25 (never above `max`), so relays and rows that
/// failed together do not all come back at the same instant.
pub(crate) fn delay(failures: u32, base: Duration, max: Duration) -> Duration {
    let doublings = failures.saturating_sub(1).min(32);
    let raw = base.saturating_mul(2u32.saturating_pow(doublings)).min(max);
    raw.mul_f64(jitter()).min(max)
}

/// A random factor in 0.75..1.25.
fn jitter() -> f64 {
    // 53 random bits of a v4 UUID (the OS's generator, through uuid).
    let bits = (uuid::Uuid::new_v4().as_u128() >> 75) as u64;
    let unit = bits as f64 / (1u64 << 53) as f64;
    0.75 + unit * 0.5
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_within_the_jitter_and_stays_under_the_cap() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(2);
        for _ in 0..200 {
            let first = delay(1, base, max);
            assert!(
                first >= base.mul_f64(0.75) && first <= base.mul_f64(1.25),
                "{first:?}"
            );
            let third = delay(3, base, max);
            assert!(
                third >= Duration::from_millis(300) && third <= Duration::from_millis(500),
                "{third:?}"
            );
            assert!(delay(40, base, max) <= max);
        }
        // Not all the same: jitter spreads them.
        let spread: std::collections::HashSet<Duration> =
            (0..50).map(|_| delay(1, base, max)).collect();
        assert!(spread.len() > 10, "{}", spread.len());
    }
}
