//! The wall clock, for the parts of the server that may read it: drivers, the HTTP edge and
//! stores.
//!
//! The hub core never calls this: it gets the time as a `hub::Now` from its driver. This module
//! sits below every layer that reads the clock, so none of them imports from a higher one.

/// Milliseconds since the Unix epoch, from the system clock (drivers and stores only).
#[allow(clippy::disallowed_methods)]
pub fn unix_ms_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
