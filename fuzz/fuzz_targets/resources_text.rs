//! The text parser must never panic, and whatever it accepts must print to text that parses back
//! to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mesos_core::resources::Resources;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(r) = Resources::parse(text) {
        let again = Resources::parse(&r.to_string()).expect("printed resources parse back");
        assert_eq!(again, r);
    }
});
