//! Exponential backoff, the one rule behind every "try again later, a little later each time":
//! the agent's status-update retries, the agent link's registration and reconnects, and (to
//! come) Marathon's launch delay.
//!
//! A [`Backoff`] is a policy as data: the first delay, the factor each further delay is
//! multiplied by, the cap, and an optional jitter. It never reads a clock or draws randomness
//! itself: jitter takes the caller's rng, so a seeded run is repeatable. A [`Retry`] is one
//! sequence of attempts under a policy (the current delay, and a reset after success).

use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

/// An exponential backoff policy: `initial`, then `initial * factor`, `initial * factor²` ...
/// capped at `max`. With `jitter` j > 0, a delay d is drawn from `[d * (1 - j), d]`.
///
/// ```
/// use std::time::Duration;
/// use mesos_core::backoff::Backoff;
/// let b = Backoff::new(Duration::from_secs(10), 2.0, Duration::from_secs(600));
/// let delays: Vec<u64> = (0..8).map(|n| b.nth(n).as_secs()).collect();
/// assert_eq!(delays, [10, 20, 40, 80, 160, 320, 600, 600]);
/// assert_eq!(b.after(Duration::from_secs(40)), Duration::from_secs(80));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Backoff {
    /// The first delay.
    pub initial: Duration,
    /// What each further delay is multiplied by (at least 1).
    pub factor: f64,
    /// The largest delay.
    pub max: Duration,
    /// The fraction of a delay that may be taken off at random (0: none, at most 1).
    pub jitter: f64,
}

impl Backoff {
    /// A policy without jitter.
    pub const fn new(initial: Duration, factor: f64, max: Duration) -> Self {
        Backoff {
            initial,
            factor,
            max,
            jitter: 0.0,
        }
    }

    /// The same policy taking up to `fraction` (clamped to 0..=1) of each delay off at random.
    pub fn with_jitter(self, fraction: f64) -> Self {
        let jitter = if fraction.is_nan() {
            0.0
        } else {
            fraction.clamp(0.0, 1.0)
        };
        Backoff { jitter, ..self }
    }

    /// The first delay (`initial`, capped at `max`).
    pub fn first(&self) -> Duration {
        self.initial.min(self.max)
    }

    /// The delay that follows `previous`: `previous * factor`, capped at `max`.
    pub fn after(&self, previous: Duration) -> Duration {
        let factor = if self.factor.is_finite() {
            self.factor.max(1.0)
        } else {
            1.0
        };
        let secs = previous.as_secs_f64() * factor;
        if !secs.is_finite() || secs >= self.max.as_secs_f64() {
            self.max
        } else {
            Duration::from_secs_f64(secs).max(previous).min(self.max)
        }
    }

    /// The delay before attempt `n` (0 is the first retry), without jitter.
    pub fn nth(&self, n: u32) -> Duration {
        let mut d = self.first();
        for _ in 0..n {
            let next = self.after(d);
            if next == d {
                break;
            }
            d = next;
        }
        d
    }

    /// `delay` with this policy's jitter applied, drawn from `rng`.
    pub fn jittered<R: Rng + ?Sized>(&self, delay: Duration, rng: &mut R) -> Duration {
        if self.jitter <= 0.0 {
            return delay;
        }
        let off = rng.gen_range(0.0..self.jitter.min(1.0));
        delay.mul_f64(1.0 - off)
    }
}

/// One sequence of attempts under a [`Backoff`]: each failure takes the next delay, a success
/// starts over.
///
/// ```
/// use std::time::Duration;
/// use mesos_core::backoff::{Backoff, Retry};
/// let mut r = Retry::new(Backoff::new(Duration::from_millis(100), 2.0, Duration::from_millis(300)));
/// assert_eq!(r.next_delay(), Duration::from_millis(100));
/// assert_eq!(r.next_delay(), Duration::from_millis(200));
/// assert_eq!(r.next_delay(), Duration::from_millis(300));
/// r.reset();
/// assert_eq!(r.next_delay(), Duration::from_millis(100));
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Retry {
    policy: Backoff,
    /// The delay handed out last, `None` after a reset.
    current: Option<Duration>,
}

impl Retry {
    /// A fresh sequence.
    pub fn new(policy: Backoff) -> Self {
        Retry {
            policy,
            current: None,
        }
    }

    /// The policy.
    pub fn policy(&self) -> &Backoff {
        &self.policy
    }

    /// The delay handed out last (`None` before the first, or after a reset).
    pub fn current(&self) -> Option<Duration> {
        self.current
    }

    /// The delay before the next attempt, without jitter.
    pub fn next_delay(&mut self) -> Duration {
        let d = match self.current {
            None => self.policy.first(),
            Some(prev) => self.policy.after(prev),
        };
        self.current = Some(d);
        d
    }

    /// The delay before the next attempt, with the policy's jitter drawn from `rng` (the
    /// sequence itself grows as without jitter).
    pub fn next_delay_jittered<R: Rng + ?Sized>(&mut self, rng: &mut R) -> Duration {
        let d = self.next_delay();
        self.policy.jittered(d, rng)
    }

    /// Starts over (after a success): the next delay is the first again.
    pub fn reset(&mut self) {
        self.current = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn delays_grow_by_the_factor_and_stop_at_the_cap() {
        let b = Backoff::new(Duration::from_secs(1), 1.15, Duration::from_secs(3600));
        assert_eq!(b.nth(1), Duration::from_secs_f64(1.15));
        assert_eq!(b.nth(200), Duration::from_secs(3600));
        // A factor below one (or NaN) never shrinks a delay.
        let odd = Backoff::new(Duration::from_secs(5), 0.5, Duration::from_secs(60));
        assert_eq!(odd.nth(3), Duration::from_secs(5));
        let nan = Backoff::new(Duration::from_secs(5), f64::NAN, Duration::from_secs(60));
        assert_eq!(nan.after(Duration::from_secs(5)), Duration::from_secs(5));
        // An initial delay above the cap is capped.
        let b = Backoff::new(Duration::from_secs(90), 2.0, Duration::from_secs(60));
        assert_eq!(b.first(), Duration::from_secs(60));
    }

    #[test]
    fn jitter_stays_in_its_band_and_follows_the_seed() {
        let b =
            Backoff::new(Duration::from_secs(10), 2.0, Duration::from_secs(600)).with_jitter(0.5);
        let draw = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut r = Retry::new(b);
            (0..6)
                .map(|_| r.next_delay_jittered(&mut rng))
                .collect::<Vec<_>>()
        };
        let a = draw(7);
        assert_eq!(a, draw(7));
        assert_ne!(a, draw(8));
        for (n, d) in a.iter().enumerate() {
            let full = b.nth(n as u32);
            assert!(
                *d <= full && *d >= full / 2,
                "attempt {n}: {d:?} of {full:?}"
            );
        }
        let none = Backoff::new(Duration::from_secs(1), 2.0, Duration::from_secs(4));
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        assert_eq!(
            none.jittered(Duration::from_secs(3), &mut rng),
            Duration::from_secs(3)
        );
        assert_eq!(none.with_jitter(f64::NAN).jitter, 0.0);
        assert_eq!(none.with_jitter(7.0).jitter, 1.0);
    }
}
