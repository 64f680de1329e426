//! The client core's clock type. [`Instant`] is `std::time::Instant` on native targets; in the
//! browser, where `std` has no clock, it is a monotonic instant read from `performance.now()`.
//!
//! Written here rather than taken from `web-time` because that crate brings `js-sys`: dropping
//! both took the gzipped browser SDK from 56.7 to 54.5 KB (ARCHITECTURE.md, "Browser build").

#[cfg(not(target_arch = "wasm32"))]
pub use std::time::Instant;

use std::time::Duration;

/// Whole milliseconds in `duration` (saturating), without `Duration::as_millis`'s `u128`
/// arithmetic, which costs wasm size in the browser SDK.
pub fn millis(duration: Duration) -> u64 {
    duration
        .as_secs()
        .saturating_mul(1000)
        .saturating_add(u64::from(duration.subsec_millis()))
}

#[cfg(target_arch = "wasm32")]
pub use browser::Instant;

#[cfg(target_arch = "wasm32")]
mod browser {
    use std::ops::{Add, AddAssign, Sub};
    use std::time::Duration;

    /// A point in time: how long after the page's time origin (`performance.now()`), so it
    /// only moves forward. Same methods and operators as `std::time::Instant` uses here.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
    pub struct Instant(Duration);

    impl Instant {
        /// The current instant (the core never calls it: drivers pass the time in).
        #[cfg(feature = "web")]
        pub fn now() -> Instant {
            Instant(Duration::from_micros((performance_now() * 1000.0) as u64))
        }

        /// The time from `earlier` to `self`, or zero if `earlier` is later.
        pub fn duration_since(&self, earlier: Instant) -> Duration {
            self.0.saturating_sub(earlier.0)
        }

        /// The time from `earlier` to `self`, or zero if `earlier` is later.
        pub fn saturating_duration_since(&self, earlier: Instant) -> Duration {
            self.0.saturating_sub(earlier.0)
        }

        /// `self + duration`, unless that overflows.
        pub fn checked_add(&self, duration: Duration) -> Option<Instant> {
            self.0.checked_add(duration).map(Instant)
        }

        /// `self - duration`, unless that is before the time origin.
        pub fn checked_sub(&self, duration: Duration) -> Option<Instant> {
            self.0.checked_sub(duration).map(Instant)
        }
    }

    impl Add<Duration> for Instant {
        type Output = Instant;
        fn add(self, duration: Duration) -> Instant {
            Instant(self.0 + duration)
        }
    }

    impl AddAssign<Duration> for Instant {
        fn add_assign(&mut self, duration: Duration) {
            self.0 += duration;
        }
    }

    impl Sub<Duration> for Instant {
        type Output = Instant;
        fn sub(self, duration: Duration) -> Instant {
            Instant(self.0.saturating_sub(duration))
        }
    }

    impl Sub<Instant> for Instant {
        type Output = Duration;
        fn sub(self, earlier: Instant) -> Duration {
            self.duration_since(earlier)
        }
    }

    #[cfg(feature = "web")]
    #[wasm_bindgen::prelude::wasm_bindgen]
    extern "C" {
        #[wasm_bindgen(js_namespace = performance, js_name = now)]
        fn performance_now() -> f64;
    }
}
