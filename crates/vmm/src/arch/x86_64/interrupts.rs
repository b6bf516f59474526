//! Local APIC setup: LINT0 as ExtINT (the legacy PIC) and LINT1 as NMI, the
//! wiring a PC has and Linux expects.

use kvm_bindings::kvm_lapic_state;
use kvm_ioctls::VcpuFd;

const APIC_LVT0: usize = 0x350;
const APIC_LVT1: usize = 0x360;
const APIC_MODE_NMI: u32 = 0x4;
const APIC_MODE_EXTINT: u32 = 0x7;

/// Errors configuring the local APIC.
#[derive(Debug, thiserror::Error)]
pub enum InterruptsError {
    /// KVM_GET_LAPIC or KVM_SET_LAPIC failed.
    #[error("Cannot {what} the local APIC state")]
    Lapic {
        /// "read" or "write".
        what: &'static str,
        /// The cause.
        #[source]
        source: kvm_ioctls::Error,
    },
}

fn get_reg(state: &kvm_lapic_state, offset: usize) -> u32 {
    let b = &state.regs[offset..offset + 4];
    // `regs` is `c_char`, signed on x86: reinterpret each byte.
    u32::from_le_bytes([b[0] as u8, b[1] as u8, b[2] as u8, b[3] as u8])
}

fn set_reg(state: &mut kvm_lapic_state, offset: usize, value: u32) {
    for (dst, src) in state.regs[offset..offset + 4]
        .iter_mut()
        .zip(value.to_le_bytes())
    {
        *dst = src as std::os::raw::c_char;
    }
}

fn with_delivery_mode(reg: u32, mode: u32) -> u32 {
    (reg & !0x700) | (mode << 8)
}

/// Programs LINT0 as ExtINT and LINT1 as NMI on the vCPU's local APIC.
pub fn set_lint(vcpu: &VcpuFd) -> Result<(), InterruptsError> {
    let mut state = vcpu.get_lapic().map_err(|source| InterruptsError::Lapic {
        what: "read",
        source,
    })?;
    program_lints(&mut state);
    vcpu.set_lapic(&state)
        .map_err(|source| InterruptsError::Lapic {
            what: "write",
            source,
        })
}

fn program_lints(state: &mut kvm_lapic_state) {
    let lvt0 = get_reg(state, APIC_LVT0);
    set_reg(state, APIC_LVT0, with_delivery_mode(lvt0, APIC_MODE_EXTINT));
    let lvt1 = get_reg(state, APIC_LVT1);
    set_reg(state, APIC_LVT1, with_delivery_mode(lvt1, APIC_MODE_NMI));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lints_get_extint_and_nmi() {
        let mut state = kvm_lapic_state::default();
        set_reg(&mut state, APIC_LVT0, 0x0001_0000);
        program_lints(&mut state);
        assert_eq!(get_reg(&state, APIC_LVT0), 0x0001_0700);
        assert_eq!(get_reg(&state, APIC_LVT1), 0x400);
    }
}
