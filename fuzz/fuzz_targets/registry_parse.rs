//! Bytes from a registry → the parsers that read them: the
//! `WWW-Authenticate` header, a manifest/index body (with and without a
//! Content-Type), and the JSON error body. Must never panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = vessel_registry::challenge::parse(text);
    }
    let _ = vessel_registry::fetch::interpret("fuzz", None, data);
    let _ = vessel_registry::fetch::interpret(
        "fuzz",
        Some("application/vnd.oci.image.index.v1+json"),
        data,
    );
    let _ = vessel_registry::ErrorBody::parse(data);
});
