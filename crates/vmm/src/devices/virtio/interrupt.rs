//! A virtio-mmio device's interrupt: the `InterruptStatus` bits the guest
//! reads and acknowledges, and the line that tells it to look.
//!
//! The line is an irqfd when KVM offers one (the device thread writes an
//! eventfd and KVM injects the interrupt without a trip through the VMM);
//! otherwise the device thread pulses the line itself with
//! `KVM_IRQ_LINE` on its own handle of the VM. Without an in-kernel
//! irqchip there is no line, and a polling guest still sees the status.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use kvm_ioctls::VmFd;
use virtio_bindings::virtio_mmio::{VIRTIO_MMIO_INT_CONFIG, VIRTIO_MMIO_INT_VRING};
use vmm_sys_util::eventfd::EventFd;

/// How the interrupt reaches the guest.
#[derive(Debug)]
pub enum IrqLine {
    /// An eventfd KVM listens on (KVM_IRQFD).
    Irqfd(EventFd),
    /// KVM_IRQ_LINE on this VM handle, raised then lowered (an edge, as an
    /// irqfd makes).
    Ioctl {
        /// A second handle of the VM (a dup of its fd).
        vm: VmFd,
        /// The interrupt line.
        gsi: u32,
    },
    /// No interrupt controller: the guest polls.
    None,
}

/// Shared by the transport (vCPU threads) and the device thread.
#[derive(Debug)]
pub struct Interrupt {
    status: AtomicU32,
    needs_reset: AtomicBool,
    line: IrqLine,
}

impl Interrupt {
    /// An interrupt raised through `line`.
    pub fn new(line: IrqLine) -> Self {
        Interrupt {
            status: AtomicU32::new(0),
            needs_reset: AtomicBool::new(false),
            line,
        }
    }

    /// The `InterruptStatus` register.
    pub fn status(&self) -> u32 {
        self.status.load(Ordering::SeqCst)
    }

    /// `InterruptACK`: clears the acknowledged bits.
    pub fn ack(&self, bits: u32) {
        self.status.fetch_and(!bits, Ordering::SeqCst);
    }

    /// Tells the guest a used ring has new entries.
    pub fn signal_used_queue(&self) {
        self.raise(VIRTIO_MMIO_INT_VRING);
    }

    /// Tells the guest the configuration space (or the device status) changed.
    pub fn signal_config_change(&self) {
        self.raise(VIRTIO_MMIO_INT_CONFIG);
    }

    /// The device cannot go on until the driver resets it
    /// (`DEVICE_NEEDS_RESET` in the status register); the driver is told
    /// through a configuration-change interrupt, as the spec says.
    pub fn set_needs_reset(&self) {
        self.needs_reset.store(true, Ordering::SeqCst);
        self.signal_config_change();
    }

    /// Whether [`Interrupt::set_needs_reset`] was called since the last reset.
    pub fn needs_reset(&self) -> bool {
        self.needs_reset.load(Ordering::SeqCst)
    }

    /// Forgets status and the reset request (the driver reset the device).
    pub fn reset(&self) {
        self.status.store(0, Ordering::SeqCst);
        self.needs_reset.store(false, Ordering::SeqCst);
    }

    /// Puts back a snapshot's status bits and reset request, without
    /// raising the line (the saved interrupt controllers already hold
    /// whatever was delivered).
    pub fn restore(&self, status: u32, needs_reset: bool) {
        self.status.store(status, Ordering::SeqCst);
        self.needs_reset.store(needs_reset, Ordering::SeqCst);
    }

    fn raise(&self, bit: u32) {
        self.status.fetch_or(bit, Ordering::SeqCst);
        // A failed trigger is a host problem (KVM gone while the VM is torn
        // down); the guest still sees the status bit when it polls.
        match &self.line {
            IrqLine::Irqfd(fd) => {
                let _ = fd.write(1);
            }
            IrqLine::Ioctl { vm, gsi } => {
                let _ = vm.set_irq_line(*gsi, true);
                let _ = vm.set_irq_line(*gsi, false);
            }
            IrqLine::None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_bits_are_set_and_acknowledged() {
        let fd = EventFd::new(libc::EFD_NONBLOCK).expect("eventfd");
        let irq = Interrupt::new(IrqLine::Irqfd(fd.try_clone().expect("clone")));
        irq.signal_used_queue();
        irq.signal_config_change();
        assert_eq!(irq.status(), VIRTIO_MMIO_INT_VRING | VIRTIO_MMIO_INT_CONFIG);
        assert_eq!(fd.read().expect("two triggers"), 2);
        irq.ack(VIRTIO_MMIO_INT_VRING);
        assert_eq!(irq.status(), VIRTIO_MMIO_INT_CONFIG);
        irq.set_needs_reset();
        assert!(irq.needs_reset());
        irq.reset();
        assert_eq!(irq.status(), 0);
        assert!(!irq.needs_reset());
    }
}
