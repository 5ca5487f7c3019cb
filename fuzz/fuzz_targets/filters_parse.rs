//! `Filters::from_json` and `Filters::parse_cli` on arbitrary strings: a typed
//! `FilterError` or filters, never a panic; whatever parses survives
//! `to_json` -> `from_json` unchanged.
#![no_main]

use hypersh_watch::Filters;
use libfuzzer_sys::fuzz_target;

fn round_trip(filters: &Filters) {
    let json = filters.to_json();
    let back = Filters::from_json(&json).expect("to_json output parses");
    assert_eq!(
        &back, filters,
        "to_json -> from_json is the identity ({json})"
    );
    assert_eq!(filters.query_value().is_none(), filters.is_empty());
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(filters) = Filters::from_json(text) {
        round_trip(&filters);
        let _ = filters.validate(hypersh_watch::filters::EVENT_KEYS);
    }
    if let Ok(filters) = Filters::parse_cli(text) {
        round_trip(&filters);
        assert!(
            filters.validate(hypersh_watch::filters::CLI_KEYS).is_ok(),
            "parse_cli only accepts CLI keys"
        );
    }
});
