//! Snapshot state files (`PUT /snapshot/load`, `--restore`): untrusted
//! bytes → `vessel_vmm::snapshot::file::decode` (header, version, length,
//! checksum, postcard payload, validation). The same bytes are also sealed
//! behind a valid header and checksum, so that the payload decoder and the
//! validation see them too (the checksum would otherwise stop almost every
//! mutation before the decoder).
#![no_main]

use libfuzzer_sys::fuzz_target;
use vessel_vmm::snapshot::file;

fuzz_target!(|data: &[u8]| {
    let _ = file::decode(data);
    let _ = file::decode(&file::seal(data));
});
