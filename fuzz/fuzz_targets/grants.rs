//! Token verification and room grant matching: `Authenticator::verify` never panics on any
//! token (forged, damaged, or signed with any claims), and the grant rules keep their
//! properties for any user, patterns and room (see `chorus_fuzz::grants`).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: chorus_fuzz::grants::Input| {
    chorus_fuzz::grants::check(input);
});
