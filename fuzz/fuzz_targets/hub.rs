//! The hub core driven by random operations from several connections on virtual time, with a
//! store that answers late, fails, and replays; its invariants are checked after every step
//! (see `chorus_fuzz::hub`).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|ops: Vec<chorus_fuzz::hub::Op>| {
    chorus_fuzz::hub::run(&ops);
});
