//! The VM-wide KVM state: the in-kernel PICs and I/O APIC, the PIT and
//! the kvmclock.

use kvm_bindings::{
    kvm_irqchip, KVM_IRQCHIP_IOAPIC, KVM_IRQCHIP_PIC_MASTER, KVM_IRQCHIP_PIC_SLAVE,
};
use kvm_ioctls::VmFd;

use super::raw::Raw;
use super::state::{IrqchipState, VmState};
use crate::vm::Vm;

/// Errors saving or restoring the VM-wide state.
#[derive(Debug, thiserror::Error)]
pub enum VmStateError {
    /// A KVM call failed.
    #[error("Cannot {what}")]
    Kvm {
        /// What was being done.
        what: &'static str,
        /// The cause.
        #[source]
        source: kvm_ioctls::Error,
    },
    /// The snapshot and this host's KVM disagree on a device.
    #[error("The snapshot {0}")]
    Mismatch(&'static str),
}

fn kvm(what: &'static str) -> impl FnOnce(kvm_ioctls::Error) -> VmStateError {
    move |source| VmStateError::Kvm { what, source }
}

/// What the VM has, found when it is built (the VMM thread saves under a
/// seccomp filter that allows no capability query).
#[derive(Debug, Clone, Copy, Default)]
pub struct VmSaveContext {
    /// In-kernel PICs and I/O APIC.
    pub irqchip: bool,
    /// In-kernel PIT.
    pub pit: bool,
    /// KVM_CAP_ADJUST_CLOCK.
    pub clock: bool,
}

impl VmSaveContext {
    /// Asks the VM.
    pub fn probe(vm: &Vm) -> Self {
        VmSaveContext {
            irqchip: vm.has_irqchip(),
            pit: vm.has_pit(),
            clock: vm.kvm().check_extension(kvm_ioctls::Cap::AdjustClock),
        }
    }
}

fn get_chip(fd: &VmFd, chip_id: u32, what: &'static str) -> Result<Raw<kvm_irqchip>, VmStateError> {
    let mut chip = kvm_irqchip {
        chip_id,
        ..Default::default()
    };
    fd.get_irqchip(&mut chip).map_err(kvm(what))?;
    Ok(Raw(chip))
}

/// Saves the VM-wide state of a paused VM.
pub fn save(fd: &VmFd, ctx: VmSaveContext) -> Result<VmState, VmStateError> {
    let irqchip = if ctx.irqchip {
        Some(IrqchipState {
            pic_master: get_chip(fd, KVM_IRQCHIP_PIC_MASTER, "read the master PIC")?,
            pic_slave: get_chip(fd, KVM_IRQCHIP_PIC_SLAVE, "read the slave PIC")?,
            ioapic: get_chip(fd, KVM_IRQCHIP_IOAPIC, "read the I/O APIC")?,
        })
    } else {
        None
    };
    let pit = ctx
        .pit
        .then(|| fd.get_pit2().map(Raw))
        .transpose()
        .map_err(kvm("read the PIT"))?;
    let clock = ctx
        .clock
        .then(|| fd.get_clock().map(Raw))
        .transpose()
        .map_err(kvm("read the kvmclock"))?;
    Ok(VmState {
        irqchip,
        pit,
        clock,
    })
}

fn set_chip(
    fd: &VmFd,
    chip: &Raw<kvm_irqchip>,
    chip_id: u32,
    what: &'static str,
) -> Result<(), VmStateError> {
    // The chip id is the slot's, whatever the file says.
    let mut chip = chip.0;
    chip.chip_id = chip_id;
    fd.set_irqchip(&chip).map_err(kvm(what))
}

/// Puts `state` into a fresh VM built like the one saved.
pub fn restore(vm: &Vm, state: &VmState) -> Result<(), VmStateError> {
    let fd = vm.fd();
    match (&state.irqchip, vm.has_irqchip()) {
        (Some(chips), true) => {
            set_chip(
                fd,
                &chips.pic_master,
                KVM_IRQCHIP_PIC_MASTER,
                "set the master PIC",
            )?;
            set_chip(
                fd,
                &chips.pic_slave,
                KVM_IRQCHIP_PIC_SLAVE,
                "set the slave PIC",
            )?;
            set_chip(fd, &chips.ioapic, KVM_IRQCHIP_IOAPIC, "set the I/O APIC")?;
        }
        (None, false) => {}
        (Some(_), false) => {
            return Err(VmStateError::Mismatch(
                "has an in-kernel irqchip this host's KVM does not offer",
            ))
        }
        (None, true) => return Err(VmStateError::Mismatch("has no in-kernel irqchip state")),
    }
    match (&state.pit, vm.has_pit()) {
        (Some(pit), true) => fd.set_pit2(pit).map_err(kvm("set the PIT"))?,
        (None, false) => {}
        (Some(_), false) => {
            return Err(VmStateError::Mismatch(
                "has an in-kernel PIT this host's KVM does not offer",
            ))
        }
        (None, true) => return Err(VmStateError::Mismatch("has no PIT state")),
    }
    if let Some(clock) = &state.clock {
        // Flags describe how the clock was read (TSC-stable, realtime…);
        // none of them is an input KVM_SET_CLOCK takes as is.
        let mut clock = clock.0;
        clock.flags = 0;
        fd.set_clock(&clock).map_err(kvm("set the kvmclock"))?;
    }
    Ok(())
}
