//! Helpers shared by the KVM integration tests.

#![allow(dead_code)]

use std::path::Path;
use std::sync::{Arc, Mutex};

use vessel_vmm::{ConsoleOutput, VmConfig};

// Not every test binary uses all three.
#[allow(unused_imports)]
pub use vessel_testkit::guests::{build_c_guest, build_guest, require_kvm};
/// A config booting `kernel` with the console captured in memory.
pub fn captured(kernel: &Path) -> (VmConfig, Arc<Mutex<Vec<u8>>>) {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let mut config = VmConfig::new(kernel);
    config.memory_mib = 32;
    config.console = ConsoleOutput::Buffer(buf.clone());
    (config, buf)
}

/// The captured console output as text.
pub fn text(buf: &Arc<Mutex<Vec<u8>>>) -> String {
    String::from_utf8_lossy(&buf.lock().expect("console buffer")).into_owned()
}
