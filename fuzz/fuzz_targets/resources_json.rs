//! The v1 JSON reader must never panic; accepted values round-trip through JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mesos_core::resources::Resources;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = serde_json::from_slice::<Resources>(data) {
        let json = serde_json::to_vec(&r).expect("resources serialise");
        let back: Resources = serde_json::from_slice(&json).expect("serialised resources parse back");
        assert_eq!(back, r);
    }
});
