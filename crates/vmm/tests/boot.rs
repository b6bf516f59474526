//! End-to-end boots of purpose-built guests under KVM: PVH and 64-bit Linux
//! entry, serial output, i8042 reset, triple fault, SMP shutdown.

mod common;

use std::time::Instant;

use common::{build_guest, captured, require_kvm, text};
use vessel_vmm::{run_vm, VmExitReason, VmmError};

#[test]
fn pvh_guest_prints_and_resets() {
    require_kvm();
    let dir = tempfile::tempdir().expect("tempdir");
    let kernel = build_guest("pvh_hello", dir.path());
    let (config, console) = captured(&kernel);
    let start = Instant::now();
    let reason = run_vm(config).expect("the guest runs");
    eprintln!("pvh_hello: launch to exit {:?}", start.elapsed());
    assert_eq!(text(&console), "vessel guest ok\n");
    assert_eq!(reason, VmExitReason::Reset);
    assert!(reason.is_clean());
}

#[test]
fn linux64_guest_gets_zero_page_and_long_mode() {
    require_kvm();
    let dir = tempfile::tempdir().expect("tempdir");
    let kernel = build_guest("linux64_hello", dir.path());
    let (mut config, console) = captured(&kernel);
    config.cmdline = "console=ttyS0".into();
    let reason = run_vm(config).expect("the guest runs");
    assert_eq!(text(&console), "vessel guest 64 ok\n");
    assert_eq!(reason, VmExitReason::Reset);
}

#[test]
fn smp_guest_stops_every_vcpu() {
    require_kvm();
    let dir = tempfile::tempdir().expect("tempdir");
    let kernel = build_guest("pvh_hello", dir.path());
    let (mut config, console) = captured(&kernel);
    config.vcpus = 2;
    // The application processor waits for a SIPI that never comes: the VMM
    // must still stop its thread when the boot processor resets.
    let reason = run_vm(config).expect("the guest runs");
    assert_eq!(reason, VmExitReason::Reset);
    assert_eq!(text(&console), "vessel guest ok\n");
}

#[test]
fn triple_fault_is_reported() {
    require_kvm();
    let dir = tempfile::tempdir().expect("tempdir");
    let kernel = build_guest("triple_fault", dir.path());
    let (config, console) = captured(&kernel);
    let result = run_vm(config);
    assert_eq!(text(&console), "about to triple fault\n");
    assert!(
        matches!(result, Ok(VmExitReason::TripleFault)),
        "{result:?}"
    );
}

#[test]
fn console_to_a_file() {
    require_kvm();
    let dir = tempfile::tempdir().expect("tempdir");
    let kernel = build_guest("pvh_hello", dir.path());
    let log = dir.path().join("console.log");
    let mut config = vessel_vmm::VmConfig::new(&kernel);
    config.memory_mib = 16;
    config.console = vessel_vmm::ConsoleOutput::File(log.clone());
    assert_eq!(run_vm(config).expect("runs"), VmExitReason::Reset);
    assert_eq!(
        std::fs::read_to_string(&log).expect("log"),
        "vessel guest ok\n"
    );
}

#[test]
fn bad_input_gets_clear_errors() {
    require_kvm();
    let dir = tempfile::tempdir().expect("tempdir");
    let not_kernel = dir.path().join("not-a-kernel");
    std::fs::write(&not_kernel, b"hello, I am a text file\n").expect("write");
    let (config, _) = captured(&not_kernel);
    let err = run_vm(config).expect_err("not a kernel");
    assert!(matches!(err, VmmError::Loader(_)), "{err:?}");
    let chain = error_chain(&err);
    assert!(chain.contains("not-a-kernel"), "{chain}");

    let kernel = build_guest("pvh_hello", dir.path());
    let (mut config, _) = captured(&kernel);
    config.vcpus = 0;
    assert!(matches!(
        run_vm(config),
        Err(VmmError::VcpuCount { wanted: 0, .. })
    ));

    let (mut config, _) = captured(&kernel);
    config.vcpus = 255;
    assert!(matches!(
        run_vm(config),
        Err(VmmError::VcpuCount { wanted: 255, .. })
    ));

    let initrd = dir.path().join("big.cpio");
    let f = std::fs::File::create(&initrd).expect("create");
    f.set_len(64 << 20).expect("size");
    let (mut config, _) = captured(&kernel);
    config.initrd = Some(initrd);
    let err = run_vm(config).expect_err("initrd too large");
    assert!(
        error_chain(&err).contains("does not fit"),
        "{}",
        error_chain(&err)
    );
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut s = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        s.push_str(": ");
        s.push_str(&e.to_string());
        cur = e.source();
    }
    s
}
