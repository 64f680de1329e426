//! The JSON codec against `serde_json`: every text is accepted or refused by both, accepted
//! texts read as the same value, and every string in them is written back as `serde_json`
//! writes it (and reads back the same).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        chorus_fuzz::json_codec(text);
    }
});
