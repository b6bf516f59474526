//! `vessel vm run --config-file` bytes → parse and convert: must never panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(file) = vessel_vmm::config::file::parse(data) {
        let _ = file.to_vm_config();
    }
});
