//! The long poll's query decoder on any query string: it never panics, and whatever decodes
//! encodes to a query that decodes to the same value.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        chorus_fuzz::poll_query(text);
    }
});
