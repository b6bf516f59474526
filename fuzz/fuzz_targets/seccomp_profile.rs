//! linux.seccomp JSON → compile to BPF: must never panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(profile) = serde_json::from_slice::<oci_spec::runtime::LinuxSeccomp>(data) {
        let _ = vessel_seccomp::compile(&profile);
    }
});
