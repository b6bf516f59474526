//! Bytes on the VMM's API socket → HTTP parse, then routing of whatever
//! parses (JSON bodies into Firecracker's types): must never panic, and a
//! complete request never claims more bytes than it was given.
#![no_main]

use vessel_vmm::api::http::{parse_request, Parsed, MAX_BODY_BYTES};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Ok(Parsed::Complete(request, used)) = parse_request(rest) {
        assert!(used > 0 && used <= rest.len());
        assert!(request.body.len() <= MAX_BODY_BYTES);
        let _ = vessel_vmm::api::route(&request);
        rest = &rest[used..];
    }
});
