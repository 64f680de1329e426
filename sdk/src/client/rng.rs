//! A small seeded random number generator (SplitMix64) owned by the client core.
//!
//! Drivers seed it from the platform's entropy (`getrandom`, `crypto.getRandomValues`); tests
//! seed it with a fixed number, so every run of a scenario is the same.

use std::time::Duration;

/// SplitMix64: tiny, fast, good enough for jitter and ids (not for secrets).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniformly random duration in `[0, max)`, to the microsecond (zero when `max` is
    /// under a microsecond). Integer arithmetic only: floating-point `Duration` scaling costs
    /// wasm size in the browser SDK.
    pub fn below(&mut self, max: Duration) -> Duration {
        let micros = max
            .as_secs()
            .saturating_mul(1_000_000)
            .saturating_add(u64::from(max.subsec_micros()));
        Duration::from_micros(match micros {
            0 => 0,
            _ => self.next_u64() % micros,
        })
    }

    /// `len` random characters from `[0-9a-z]`.
    pub fn token(&mut self, len: usize) -> String {
        const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
        let mut out = String::with_capacity(len);
        for _ in 0..len {
            out.push(char::from(ALPHABET[(self.next_u64() % 36) as usize]));
        }
        out
    }
}
