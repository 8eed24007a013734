//! Capped exponential backoff between reconnect attempts.

use std::time::Duration;

/// Delay before each retry: `min`, then doubling, never above `max`.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            min,
            max,
            failures: 0,
        }
    }

    /// The delay before the next attempt, counting one more failure.
    pub fn next_delay(&mut self) -> Duration {
        let d = self
            .min
            .checked_mul(1u32 << self.failures.min(20))
            .unwrap_or(self.max)
            .min(self.max);
        self.failures = self.failures.saturating_add(1);
        d
    }

    /// A connection succeeded: start again from `min`.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_and_resets() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(5), ms(30));
        let seq: Vec<_> = (0..6).map(|_| b.next_delay()).collect();
        assert_eq!(seq, [ms(5), ms(10), ms(20), ms(30), ms(30), ms(30)]);
        for _ in 0..100 {
            b.next_delay();
        }
        assert_eq!(b.next_delay(), ms(30));
        b.reset();
        assert_eq!(b.next_delay(), ms(5));
    }
}
