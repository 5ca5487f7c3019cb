//! `WatchEvent::decode` on arbitrary bytes: a typed `DecodeError` or an event, never a
//! panic; a decoded event keeps the frame and a non-empty id.
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
        if let Some(c) = e.to_container() {
            let _ = e.apply_to(&c);
        }
        let _ = e.apply_to(&hypersh_watch::Container::default());
    }
});
