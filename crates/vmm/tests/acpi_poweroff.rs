//! Power-off through ACPI under KVM: a guest follows the RSDP vessel hands
//! it (PVH `rsdp_paddr`) to the XSDT and the FADT, and writes S5 | SLP_EN
//! to the sleep control register the FADT names; the VM then ends with
//! `PowerOff`. Another sleep state is ignored.

mod common;

use common::{build_guest, captured, require_kvm, text};
use vessel_vmm::{run_vm, VmExitReason};

#[test]
fn s5_through_the_fadt_sleep_register_powers_off() {
    require_kvm();
    let dir = tempfile::tempdir().expect("tempdir");
    let kernel = build_guest("acpi_poweroff", dir.path());
    let (config, console) = captured(&kernel);
    let reason = run_vm(config).expect("the guest runs");
    assert_eq!(reason, VmExitReason::PowerOff, "{}", text(&console));
    assert!(reason.is_clean());
    // The vCPU runs on until the VMM stops it, as after an i8042 reset: the
    // guest polls the status register meanwhile (Linux does the same).
    assert!(text(&console).starts_with("sleep control register found\n"));
}

#[test]
fn power_off_stops_every_vcpu() {
    require_kvm();
    let dir = tempfile::tempdir().expect("tempdir");
    let kernel = build_guest("acpi_poweroff", dir.path());
    let (mut config, console) = captured(&kernel);
    // The application processors wait for a SIPI that never comes.
    config.vcpus = 3;
    let reason = run_vm(config).expect("the guest runs");
    assert_eq!(reason, VmExitReason::PowerOff, "{}", text(&console));
    assert!(text(&console).starts_with("sleep control register found\n"));
}

#[test]
fn another_sleep_state_does_not_power_off() {
    require_kvm();
    let dir = tempfile::tempdir().expect("tempdir");
    let kernel = build_guest("acpi_sleep_s3", dir.path());
    let (config, console) = captured(&kernel);
    let reason = run_vm(config).expect("the guest runs");
    // The guest went on after its S3 write, said so, and rebooted.
    assert_eq!(
        text(&console),
        "sleep control register found\nstill running after the sleep write\n"
    );
    assert_eq!(reason, VmExitReason::Reset);
}
