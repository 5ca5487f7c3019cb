//! The container list decode the client does on `GET /containers/json` bodies:
//! `serde_json::from_slice::<Vec<Container>>` on arbitrary bytes never panics, and what
//! decodes re-encodes and decodes to the same list.
#![no_main]

use hypersh_watch::Container;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(list) = serde_json::from_slice::<Vec<Container>>(data) {
        for c in &list {
            let _ = c.name();
            let _ = (
                c.id(),
                c.names().count(),
                c.labels().iter().count(),
                c.state(),
            );
        }
        let json = serde_json::to_vec(&list).expect("a decoded list encodes");
        let back: Vec<Container> = serde_json::from_slice(&json).expect("an encoded list decodes");
        assert_eq!(back, list, "encode -> decode is the identity");
    }
});
