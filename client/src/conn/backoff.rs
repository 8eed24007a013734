//! Capped exponential backoff between reconnect attempts, with jitter.

use fastrand::Rng;
use std::time::Duration;

/// The delay before each retry, growing and jittered so that many clients that lost their
/// server at the same moment (a restart) do not all reconnect at the same moments.
///
/// Shape ("equal jitter", never outside `[min, max]`): retry `n` (from 0) has the window
/// `d = min(max, min · 2^(n+1))` and waits a uniform random delay in `[max(min, d/2), d]`. So with
/// the defaults (5 ms, 1 s) the first retry waits 5–10 ms, the second 10–20 ms, the third
/// 20–40 ms…, every later one 0.5–1 s. The randomness comes from the seed given at
/// construction (no global random source: the same seed gives the same delays).
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    failures: u32,
    rng: Rng,
}

impl Backoff {
    /// Retries waiting between `min` and `max` (`max` below `min` counts as `min`), jittered by
    /// `seed`.
    pub fn new(min: Duration, max: Duration, seed: u64) -> Backoff {
        Backoff {
            min,
            max: max.max(min),
            failures: 0,
            rng: Rng::with_seed(seed),
        }
    }

    /// The delay before the next attempt, counting one more failure.
    pub fn next_delay(&mut self) -> Duration {
        let (low, high) = self.window();
        self.failures = self.failures.saturating_add(1);
        let (low, high) = (nanos(low), nanos(high));
        Duration::from_nanos(self.rng.u64(low..=high))
    }

    /// The bounds of the next delay: `[max(min, d/2), d]`, `d = min(max, min · 2^(failures+1))`.
    fn window(&self) -> (Duration, Duration) {
        let d = self
            .min
            .checked_mul(2u32 << self.failures.min(30))
            .map_or(self.max, |d| d.min(self.max));
        ((d / 2).max(self.min), d)
    }

    /// A connection succeeded: start again from `min`.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

/// A duration in nanoseconds, saturating (delays are bounded far below 584 years anyway).
fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn delays_grow_within_their_windows_up_to_the_cap() {
        for seed in [0, 1, 42, u64::MAX] {
            let mut b = Backoff::new(MS(5), MS(1000), seed);
            let windows = [
                (5, 10),
                (10, 20),
                (20, 40),
                (40, 80),
                (80, 160),
                (160, 320),
                (320, 640),
                (500, 1000),
                (500, 1000),
            ];
            for (n, (low, high)) in windows.into_iter().enumerate() {
                let d = b.next_delay();
                assert!(
                    (MS(low)..=MS(high)).contains(&d),
                    "seed {seed}, retry {n}: {d:?} outside [{low} ms, {high} ms]"
                );
            }
            for _ in 0..1000 {
                let d = b.next_delay();
                assert!((MS(500)..=MS(1000)).contains(&d), "{d:?} beyond the cap");
            }
            b.reset();
            assert!(
                (MS(5)..=MS(10)).contains(&b.next_delay()),
                "reset starts again"
            );
        }
    }

    #[test]
    fn delays_never_leave_min_and_max() {
        for (min, max) in [(5, 5), (5, 6), (1, 3), (10, 40), (0, 0), (0, 10), (7, 2)] {
            let mut b = Backoff::new(MS(min), MS(max), min * 31 + max);
            for _ in 0..200 {
                let d = b.next_delay();
                assert!(
                    d >= MS(min) && d <= MS(max.max(min)),
                    "[{min}, {max}] ms gave {d:?}"
                );
            }
        }
        // Durations far beyond a u64 of nanoseconds saturate instead of overflowing.
        let huge = Duration::from_secs(u64::MAX);
        let mut b = Backoff::new(huge, huge, 3);
        assert_eq!(b.next_delay(), Duration::from_nanos(u64::MAX));
    }

    #[test]
    fn the_average_delay_doubles_until_the_cap() {
        // Over many seeds, each retry waits on average about twice as long as the one before.
        let mut sums = [0u128; 6];
        for seed in 0..500 {
            let mut b = Backoff::new(MS(5), MS(1000), seed);
            for sum in &mut sums {
                *sum += b.next_delay().as_nanos();
            }
        }
        for pair in sums.windows(2) {
            let ratio = pair[1] as f64 / pair[0] as f64;
            assert!((1.8..2.2).contains(&ratio), "{sums:?}");
        }
    }

    #[test]
    fn two_seeds_give_two_sequences_and_one_seed_one() {
        let seq = |seed| {
            let mut b = Backoff::new(MS(5), MS(1000), seed);
            (0..10).map(|_| b.next_delay()).collect::<Vec<_>>()
        };
        assert_ne!(seq(1), seq(2), "two clients do not retry in lockstep");
        assert_eq!(seq(7), seq(7), "the delays depend on the seed only");
        // Neither is the cap: the delays really vary within their windows.
        let distinct: std::collections::BTreeSet<_> = (0..50).map(|s| seq(s)[3]).collect();
        assert!(distinct.len() > 40, "{distinct:?}");
    }
}
