//! Client core tests on virtual time.

use web_time::Instant;

/// The origin of virtual time in tests.
#[allow(clippy::disallowed_methods)]
pub(crate) fn t0() -> Instant {
    Instant::now()
}
