//! `ClientFrame::decode` on any text: it never panics, and whatever decodes encodes to a text
//! that decodes to the same frame and encodes the same again.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        chorus_fuzz::client_frame(text);
    }
});
