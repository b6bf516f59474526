//! The vCPU layer on its own, crosvm style: tiny real-mode guests written as
//! machine code bytes, run with `Vcpu::run()` and checked by register.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::require_kvm;
use vessel_vmm::devices::Bus;
use vessel_vmm::memory::create_guest_memory;
use vessel_vmm::vcpu::{install_kick_handler, kick_signal, Vcpu, VcpuControl, VcpuStop, VmExit};
use vessel_vmm::vm::Vm;
use vm_memory::{Bytes, GuestAddress};
use vmm_sys_util::signal::Killable;

const CODE_ADDR: u64 = 0x1000;

/// A VM without in-kernel irqchip (so `hlt` reaches the VMM) whose vCPU 0
/// starts in real mode at `CODE_ADDR` running `code`.
fn real_mode_vcpu(code: &[u8], rax: u64, rbx: u64) -> (Vm, Vcpu) {
    require_kvm();
    let mem = create_guest_memory(2).expect("memory");
    mem.write_slice(code, GuestAddress(CODE_ADDR))
        .expect("code");
    let vm = Vm::new(mem).expect("vm");
    let vcpu = vm.create_vcpu(0).expect("vcpu");
    let mut sregs = vcpu.fd().get_sregs().expect("sregs");
    sregs.cs.base = 0;
    sregs.cs.selector = 0;
    vcpu.fd().set_sregs(&sregs).expect("set sregs");
    let regs = kvm_bindings::kvm_regs {
        rip: CODE_ADDR,
        rax,
        rbx,
        rflags: 2,
        ..Default::default()
    };
    vcpu.fd().set_regs(&regs).expect("set regs");
    (vm, vcpu)
}

#[test]
fn add_then_hlt() {
    // add ax, bx; hlt
    let (_vm, mut vcpu) = real_mode_vcpu(&[0x01, 0xd8, 0xf4], 2, 1);
    let exit = vcpu.run().expect("run");
    assert!(matches!(exit, VmExit::Hlt), "{exit:?}");
    assert_eq!(vcpu.fd().get_regs().expect("regs").rax, 3);
}

#[test]
fn port_out_then_in_then_hlt() {
    // add ax, bx; out 0x10, al; in al, 0x11; hlt
    let (_vm, mut vcpu) = real_mode_vcpu(&[0x01, 0xd8, 0xe6, 0x10, 0xe4, 0x11, 0xf4], 0x40, 2);
    match vcpu.run().expect("run") {
        VmExit::IoOut { port, data } => assert_eq!((port, data), (0x10, &[0x42u8][..])),
        other => panic!("expected IoOut, got {other:?}"),
    }
    match vcpu.run().expect("run") {
        VmExit::IoIn { port, data } => {
            assert_eq!((port, data.len()), (0x11, 1));
            data[0] = 0x99;
        }
        other => panic!("expected IoIn, got {other:?}"),
    }
    assert!(matches!(vcpu.run().expect("run"), VmExit::Hlt));
    assert_eq!(vcpu.fd().get_regs().expect("regs").rax & 0xff, 0x99);
}

#[test]
fn a_spinning_vcpu_is_kicked_out() {
    // jmp $ (forever)
    let (_vm, mut vcpu) = real_mode_vcpu(&[0xeb, 0xfe], 0, 0);
    let control = Arc::new(VcpuControl::new());
    let flag = control.clone();
    let thread = std::thread::spawn(move || {
        let (pio, mmio) = (Bus::new(), Bus::new());
        vcpu.run_loop(&pio, &mmio, &flag)
    });
    std::thread::sleep(Duration::from_millis(50));
    control.request_stop();
    thread.kill(kick_signal()).expect("kick");
    let result = thread.join().expect("vcpu thread");
    assert_eq!(result.expect("loop"), VcpuStop::Stopped);
}

#[test]
fn a_spinning_vcpu_is_parked_resumed_and_stopped() {
    let (_vm, mut vcpu) = real_mode_vcpu(&[0xeb, 0xfe], 0, 0);
    // Before the first kick can arrive (run_loop installs it too).
    install_kick_handler().expect("kick handler");
    let control = Arc::new(VcpuControl::new());
    let flag = control.clone();
    let thread = std::thread::spawn(move || {
        let (pio, mmio) = (Bus::new(), Bus::new());
        vcpu.run_loop(&pio, &mmio, &flag)
    });
    for _ in 0..3 {
        control.request_pause();
        thread.kill(kick_signal()).expect("kick");
        // Returns only once the vCPU thread is parked outside KVM_RUN.
        control.wait_parked(1);
        assert!(control.is_paused());
        control.resume();
    }
    control.request_stop();
    thread.kill(kick_signal()).expect("kick");
    let result = thread.join().expect("vcpu thread");
    assert_eq!(result.expect("loop"), VcpuStop::Stopped);
}
