//! The fast list element decoder against serde, on arbitrary bytes:
//! `Container::from_list_element` (the scanner of `crates/watch/src/container/scan.rs`
//! for the elements servers send, serde from the start for the rest) and
//! `serde_json::from_slice::<Container>` (the reference) give the same container, or
//! the same error. The scanner never decides an error: when it refuses an element serde
//! reads it, so an error differs only if the scanner took an element serde refuses. The
//! property tests in `container/scan/tests.rs` make the same check on generated elements.
#![no_main]

use hypersh_watch::Container;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let fast = Container::from_list_element(data);
    let plain = serde_json::from_slice::<Container>(data);
    match (&fast, &plain) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "element: {}", String::from_utf8_lossy(data)),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        _ => panic!(
            "the fast path and serde disagree on {}: {fast:?} / {plain:?}",
            String::from_utf8_lossy(data)
        ),
    }
});
