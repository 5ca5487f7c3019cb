//! The fast event decoder against the plain one, on arbitrary bytes: `WatchEvent::decode`
//! (hand-written visitors, strings kept as places in the frame) and the oracle of
//! `crates/watch/tests/oracle/` (serde derive into owned types) give the same event, or
//! refuse the frame for the same reason. The property test `tests/differential.rs` makes
//! the same check on generated frames.
#![no_main]

#[path = "../../crates/watch/tests/oracle/mod.rs"]
mod oracle;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (fast, plain) = oracle::both(data);
    assert_eq!(fast, plain, "frame: {}", String::from_utf8_lossy(data));
});
