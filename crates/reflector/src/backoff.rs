//! Exponential backoff: one envelope (`Exponential`) for the reflector's reconnects and
//! the controller's retries, and the reflector's reconnect policy as a value
//! ([`BackoffConfig`]): full jitter, reset after a healthy period.
//!
//! The envelope is computed from the attempt number, exactly: the controller's per-key
//! retries are client-go's `5ms * 2^n` to the nanosecond, which a stateful `f32` iterator
//! (`backon`'s) does not give. The unmaintained `backoff` crate (RUSTSEC-2025-0012, and
//! `instant`, RUSTSEC-2024-0384) is not used.

use std::time::Duration;

/// First delay: client-go's reflector uses 800 ms.
pub const DEFAULT_INITIAL: Duration = Duration::from_millis(800);
/// Largest delay: client-go's reflector uses 30 s.
pub const DEFAULT_MAX: Duration = Duration::from_secs(30);
/// Growth factor: client-go's reflector uses 2.
pub const DEFAULT_FACTOR: f32 = 2.0;
/// A connection that stayed healthy this long resets the backoff: client-go uses 2 min.
pub const DEFAULT_RESET_AFTER: Duration = Duration::from_secs(120);

/// How long to wait between failed attempts.
///
/// Delay `n` is drawn uniformly from `[0, min(max, initial * factor^n)]` ("full jitter",
/// which spreads a fleet of clients reconnecting after an outage); with jitter off it is
/// the envelope itself.
///
/// ```
/// use std::time::Duration;
/// # // The facade `hypersh` re-exports these; this crate's doctests cannot depend on it.
/// # mod hypersh { pub use hypersh_reflector::BackoffConfig; }
/// use hypersh::BackoffConfig;
///
/// let mut backoff = BackoffConfig::default().jitter(false).build();
/// assert_eq!(backoff.next_delay().as_millis(), 800);
/// assert_eq!(backoff.next_delay().as_millis(), 1600);
/// backoff.reset();
/// assert_eq!(backoff.next_delay(), Duration::from_millis(800));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct BackoffConfig {
    /// The first delay ([`DEFAULT_INITIAL`]).
    pub initial: Duration,
    /// The largest delay ([`DEFAULT_MAX`]); authentication failures always wait this long.
    pub max: Duration,
    /// The growth factor ([`DEFAULT_FACTOR`]).
    pub factor: f32,
    /// Full jitter on (the default) or off.
    pub jitter: bool,
    /// A connection healthy for this long resets the backoff ([`DEFAULT_RESET_AFTER`]).
    pub reset_after: Duration,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        Self {
            initial: DEFAULT_INITIAL,
            max: DEFAULT_MAX,
            factor: DEFAULT_FACTOR,
            jitter: true,
            reset_after: DEFAULT_RESET_AFTER,
        }
    }
}

impl BackoffConfig {
    /// Sets the first delay.
    #[must_use]
    pub fn initial(mut self, d: Duration) -> Self {
        self.initial = d;
        self
    }

    /// Sets the largest delay.
    #[must_use]
    pub fn max(mut self, d: Duration) -> Self {
        self.max = d;
        self
    }

    /// Sets the growth factor (values below 1 are treated as 1).
    #[must_use]
    pub fn factor(mut self, f: f32) -> Self {
        self.factor = f;
        self
    }

    /// Turns full jitter on or off.
    #[must_use]
    pub fn jitter(mut self, on: bool) -> Self {
        self.jitter = on;
        self
    }

    /// Sets the healthy period after which the backoff starts over.
    #[must_use]
    pub fn reset_after(mut self, d: Duration) -> Self {
        self.reset_after = d;
        self
    }

    /// A fresh backoff following this policy.
    #[must_use]
    pub fn build(&self) -> Backoff {
        self.build_with(fastrand::Rng::new())
    }

    /// A fresh backoff drawing its jitter from `rng` (seeded in tests).
    pub(crate) fn build_with(&self, rng: fastrand::Rng) -> Backoff {
        Backoff {
            config: self.clone(),
            envelope: Exponential::new(self.initial, self.factor, self.max),
            attempt: 0,
            rng,
        }
    }
}

/// An exponential envelope: delay `n` (from 0) is `initial * factor^n`, at most `max`.
/// A factor below 1 counts as 1, and a `max` below `initial` as `initial`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Exponential {
    initial: Duration,
    factor: f64,
    max: Duration,
}

impl Exponential {
    pub(crate) fn new(initial: Duration, factor: f32, max: Duration) -> Self {
        Self {
            initial,
            factor: f64::from(factor).max(1.0),
            max: max.max(initial),
        }
    }

    /// The delay after `n` earlier attempts. Exact for a whole factor; past `max` (or an
    /// overflow) it is `max`.
    pub(crate) fn delay(&self, n: u32) -> Duration {
        let grown = if self.factor.fract() == 0.0 && self.factor <= f64::from(u32::MAX) {
            // A whole factor below 2^32: integer arithmetic, exact to the nanosecond.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let factor = self.factor as u32;
            factor
                .checked_pow(n)
                .and_then(|scale| self.initial.checked_mul(scale))
        } else {
            let scale = self.factor.powi(i32::try_from(n).unwrap_or(i32::MAX));
            Duration::try_from_secs_f64(self.initial.as_secs_f64() * scale).ok()
        };
        grown.map_or(self.max, |d| d.min(self.max))
    }
}

/// The running state of a [`BackoffConfig`].
#[derive(Debug)]
pub struct Backoff {
    config: BackoffConfig,
    envelope: Exponential,
    /// Attempts since the start or the last reset.
    attempt: u32,
    rng: fastrand::Rng,
}

impl Backoff {
    /// The delay before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let cap = self.envelope.delay(self.attempt);
        self.attempt = self.attempt.saturating_add(1);
        if self.config.jitter {
            cap.mul_f64(self.rng.f64())
        } else {
            cap
        }
    }

    /// The delay after an authentication failure: always the maximum (no jitter below
    /// it), so a bad key is not hammered.
    #[must_use]
    pub fn auth_delay(&self) -> Duration {
        self.config.max
    }

    /// Starts over from the initial delay.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// The policy.
    #[must_use]
    pub fn config(&self) -> &BackoffConfig {
        &self.config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_doubles_up_to_the_max() {
        let mut b = BackoffConfig::default().jitter(false).build();
        let delays: Vec<u64> = (0..8).map(|_| b.next_delay().as_millis() as u64).collect();
        assert_eq!(delays, [800, 1600, 3200, 6400, 12800, 25600, 30000, 30000]);
    }

    #[test]
    fn full_jitter_stays_within_the_envelope_and_varies() {
        let mut b = BackoffConfig::default().build();
        let mut seen = std::collections::BTreeSet::new();
        for n in 0..200 {
            let cap = (800.0 * 2f64.powi(n)).min(30_000.0);
            let d = b.next_delay().as_secs_f64() * 1000.0;
            assert!((0.0..=cap + 0.001).contains(&d), "attempt {n}: {d} > {cap}");
            seen.insert(d as u64);
        }
        assert!(seen.len() > 50, "jitter should spread delays");
    }

    #[test]
    fn reset_and_auth_delay() {
        let mut b = BackoffConfig::default()
            .initial(Duration::from_millis(10))
            .max(Duration::from_millis(40))
            .jitter(false)
            .build();
        assert_eq!(b.next_delay(), Duration::from_millis(10));
        assert_eq!(b.next_delay(), Duration::from_millis(20));
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(10));
        assert_eq!(b.auth_delay(), Duration::from_millis(40));
    }

    #[test]
    fn degenerate_settings_do_not_panic() {
        let mut b = BackoffConfig::default()
            .initial(Duration::from_secs(5))
            .max(Duration::from_secs(1))
            .factor(0.1)
            .jitter(false)
            .build();
        assert_eq!(b.next_delay(), Duration::from_secs(5));
        assert_eq!(b.next_delay(), Duration::from_secs(5));
    }

    #[test]
    fn the_envelope_is_exact_for_whole_factors_and_saturates() {
        let ms = Duration::from_millis(1);
        let e = Exponential::new(5 * ms, 2.0, Duration::from_secs(1000));
        assert_eq!(e.delay(0), 5 * ms);
        assert_eq!(e.delay(10), 5120 * ms);
        assert_eq!(e.delay(18), Duration::from_secs(1000));
        assert_eq!(e.delay(u32::MAX), Duration::from_secs(1000));
        let e = Exponential::new(100 * ms, 1.5, Duration::from_secs(1));
        assert_eq!(e.delay(1), 150 * ms);
        assert_eq!(e.delay(1000), Duration::from_secs(1));
    }

    #[test]
    fn a_seeded_rng_gives_the_same_jitter() {
        let config = BackoffConfig::default();
        let mut a = config.build_with(fastrand::Rng::with_seed(1));
        let mut b = config.build_with(fastrand::Rng::with_seed(1));
        for _ in 0..10 {
            assert_eq!(a.next_delay(), b.next_delay());
        }
    }
}
