//! Reconnect backoff: exponential with full jitter, as plain state that answers "when is the
//! next attempt?" (never a sleeping loop).

use std::time::Duration;

use crate::time::Instant;

use super::rng::Rng;

/// Backoff settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BackoffConfig {
    /// The first retry waits up to this long.
    pub base: Duration,
    /// No retry waits longer than this.
    pub cap: Duration,
    /// A connection that stays up this long resets the backoff.
    pub healthy_after: Duration,
}

impl Default for BackoffConfig {
    fn default() -> BackoffConfig {
        BackoffConfig {
            base: Duration::from_millis(500),
            cap: Duration::from_secs(10),
            healthy_after: Duration::from_secs(10),
        }
    }
}

/// Tracks consecutive failures.
#[derive(Clone, Debug)]
pub struct Backoff {
    config: BackoffConfig,
    attempt: u32,
    connected_since: Option<Instant>,
}

impl Backoff {
    /// No failures yet.
    pub fn new(config: BackoffConfig) -> Backoff {
        Backoff {
            config,
            attempt: 0,
            connected_since: None,
        }
    }

    /// How many retries in a row have been scheduled since the last healthy connection.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// A connection failed or dropped at `now`: when to try again (full jitter: uniformly
    /// random in `[0, min(cap, base * 2^attempt)]`).
    pub fn next_attempt(&mut self, now: Instant, rng: &mut Rng) -> Instant {
        if self
            .connected_since
            .take()
            .is_some_and(|since| now.duration_since(since) >= self.config.healthy_after)
        {
            self.attempt = 0;
        }
        let exponent = self.attempt.min(20);
        let ceiling = self
            .config
            .base
            .saturating_mul(1 << exponent)
            .min(self.config.cap);
        self.attempt = self.attempt.saturating_add(1);
        now + rng.below(ceiling)
    }

    /// A connection came up at `now`; once it stays up for `healthy_after`, the backoff resets.
    pub fn connected(&mut self, now: Instant) {
        self.connected_since = Some(now);
    }

    /// Forget past failures (e.g. the platform says the network is back).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_exponentially_stay_under_the_cap_and_are_jittered() {
        let t0 = crate::client::tests::t0();
        let mut rng = Rng::new(7);
        let mut backoff = Backoff::new(BackoffConfig::default());
        let ceilings_ms = [500, 1000, 2000, 4000, 8000, 10_000, 10_000, 10_000];
        for ceiling in ceilings_ms {
            let mut max_seen = Duration::ZERO;
            // Many draws at the same attempt: all within [0, ceiling], spread over the range.
            for _ in 0..200 {
                let mut probe = backoff.clone();
                let delay = probe.next_attempt(t0, &mut rng).duration_since(t0);
                assert!(
                    delay <= Duration::from_millis(ceiling),
                    "{delay:?} > {ceiling} ms"
                );
                max_seen = max_seen.max(delay);
            }
            assert!(
                max_seen > Duration::from_millis(ceiling * 8 / 10),
                "jitter spans the range: {max_seen:?}"
            );
            backoff.next_attempt(t0, &mut rng);
        }
    }

    #[test]
    fn a_healthy_connection_resets_the_backoff_a_short_one_does_not() {
        let t0 = crate::client::tests::t0();
        let mut rng = Rng::new(1);
        let mut backoff = Backoff::new(BackoffConfig::default());
        for _ in 0..4 {
            backoff.next_attempt(t0, &mut rng);
        }
        backoff.connected(t0);
        backoff.next_attempt(t0 + Duration::from_secs(2), &mut rng);
        assert_eq!(backoff.attempt(), 5, "2 s up is not healthy");
        backoff.connected(t0 + Duration::from_secs(3));
        backoff.next_attempt(t0 + Duration::from_secs(14), &mut rng);
        assert_eq!(backoff.attempt(), 1, "11 s up reset it");
    }
}
