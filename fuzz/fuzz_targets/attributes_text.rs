//! The attributes parser must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mesos_core::attributes::Attributes;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Attributes::parse(text);
    }
});
