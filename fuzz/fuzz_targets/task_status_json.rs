//! Status updates come from agents and executors: reading them must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mesos_core::task::TaskStatus;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = serde_json::from_slice::<TaskStatus>(data) {
        let _ = serde_json::to_string(&s);
    }
});
