//! A device the vCPU thread marks `DEVICE_NEEDS_RESET` (the driver set
//! `DRIVER_OK` with a queue outside guest memory): the driver reads the
//! status bit, gets the configuration interrupt, resets the device and
//! uses it. Without irqfd that interrupt is raised with `KVM_IRQ_LINE` on
//! the vCPU thread that took the MMIO exit, which its seccomp filter once
//! refused (the whole VMM ended on SIGSYS); every filter is on here, so
//! that would end this test binary with `vessel: seccomp: blocked system
//! call 16 on the vCPU thread`. Fails, never skips, without /dev/kvm.

mod common;

use common::{build_c_guest, captured, require_kvm, text};
use vessel_vmm::config::devices::EntropyConfig;
use vessel_vmm::{run_vm, VmExitReason};

fn run_reset_guest(kvm_eventfds: bool) {
    require_kvm();
    let dir = tempfile::tempdir().expect("tempdir");
    let kernel = build_c_guest("virtio_reset", dir.path());
    let (mut config, console) = captured(&kernel);
    config.devices.entropy = Some(EntropyConfig::default());
    config.devices.kvm_eventfds = kvm_eventfds;
    assert!(config.seccomp, "the filters must be on");
    let reason = run_vm(config).expect("the guest runs");
    let out = text(&console);
    assert_eq!(reason, VmExitReason::Reset, "{out}");
    // 0x4b: ACKNOWLEDGE|DRIVER|FEATURES_OK and DEVICE_NEEDS_RESET, the
    // refused DRIVER_OK cleared; the interrupt a configuration change (2).
    // After the reset the device runs (0xf) and serves a request.
    assert_eq!(
        out,
        "reset: status 0x4b interrupt isr 2\n\
         reset: status after reset 0xf\n\
         reset: entropy used len 32\n"
    );
}

#[test]
fn needs_reset_reaches_the_guest_through_kvm_irq_line_from_the_vcpu_thread() {
    run_reset_guest(false);
}

#[test]
fn needs_reset_reaches_the_guest_through_irqfd() {
    run_reset_guest(true);
}
