//! config.json bytes → parse and validate: must never panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(spec) = vessel_runtime::bundle::parse_config(data) {
        let _ = vessel_runtime::bundle::validate(&spec);
    }
});
