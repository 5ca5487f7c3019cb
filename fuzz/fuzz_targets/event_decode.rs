//! `WatchEvent::decode` on arbitrary bytes: a typed `DecodeError` or an event, never a
//! panic; a decoded event keeps the frame and a non-empty id; `changes` agrees with
//! `apply_to`, and an event applied twice changes nothing the second time.
#![no_main]

use hypersh_watch::WatchEvent;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(event) = WatchEvent::decode(data.to_vec()) {
        assert!(!event.id().is_empty(), "a decoded event has an id");
        assert_eq!(
            event.event().raw(),
            data,
            "the raw frame is kept as received"
        );
        // The accessors must not panic either.
        let e = event.event();
        let _ = e.raw_str();
        let _ = e.docker_action();
        let mut cached = vec![hypersh_watch::Container::default()];
        cached.extend(e.to_container());
        for c in &cached {
            // `changes` is `apply_to` without the copy when nothing changes.
            let next = e.apply_to(c);
            assert_eq!(e.changes(c).is_none(), next == *c);
            // Applying the same event again changes nothing.
            assert!(e.changes(&next).is_none());
        }
    }
});
