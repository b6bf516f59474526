//! CPUID for a vCPU: KVM's supported set, filtered the way a microVM wants
//! it (hypervisor bit on, topology for the vCPU count, vessel's brand
//! string, caller-chosen features masked off).
//!
//! Note: on hosts where KVM runs nested under PVM the guest reads the host's
//! real CPUID and never sees this table (see shared/ENVIRONMENT.md); it is
//! still what KVM reports for the vCPU everywhere else.

use kvm_bindings::{kvm_cpuid_entry2, CpuId, KVM_CPUID_FLAG_SIGNIFCANT_INDEX};

/// Maximum number of CPUID entries asked from KVM.
pub const MAX_CPUID_ENTRIES: usize = kvm_bindings::KVM_MAX_CPUID_ENTRIES;

/// A CPUID register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuidReg {
    /// EAX.
    Eax,
    /// EBX.
    Ebx,
    /// ECX.
    Ecx,
    /// EDX.
    Edx,
}

/// Clears `bits` in `register` of leaf `leaf` (every sub-leaf, or only
/// `subleaf` when given): a way to hide host features from the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuidMask {
    /// The leaf (EAX input).
    pub leaf: u32,
    /// The sub-leaf (ECX input), or every sub-leaf.
    pub subleaf: Option<u32>,
    /// The register whose bits are cleared.
    pub register: CpuidReg,
    /// The bits cleared.
    pub bits: u32,
}

const LEAF_FEATURES: u32 = 0x1;
const LEAF_CACHE: u32 = 0x4;
const LEAF_POWER: u32 = 0x6;
const LEAF_PMU: u32 = 0xa;
const LEAF_TOPOLOGY: u32 = 0xb;
const LEAF_TOPOLOGY_V2: u32 = 0x1f;
const LEAF_BRAND_FIRST: u32 = 0x8000_0002;
const ECX_HYPERVISOR: u32 = 1 << 31;
const EDX_HTT: u32 = 1 << 28;

/// The brand string the guest sees (`/proc/cpuinfo` "model name").
pub const BRAND: &[u8; 48] =
    b"vessel virtual CPU\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";

/// Filters KVM's supported CPUID for vCPU `index` of `count`.
pub fn filter_cpuid(cpuid: &mut CpuId, index: u8, count: u8, masks: &[CpuidMask]) {
    for entry in cpuid.as_mut_slice() {
        filter_entry(entry, index, count);
        for mask in masks {
            apply_mask(entry, mask);
        }
    }
}

fn filter_entry(entry: &mut kvm_cpuid_entry2, index: u8, count: u8) {
    let index32 = u32::from(index);
    let count32 = u32::from(count);
    match entry.function {
        LEAF_FEATURES => {
            // EBX[31:24] initial APIC id, EBX[23:16] logical processors.
            entry.ebx = (entry.ebx & 0x0000_ffff) | (index32 << 24) | (count32 << 16);
            entry.ecx |= ECX_HYPERVISOR;
            if count > 1 {
                entry.edx |= EDX_HTT;
            } else {
                entry.edx &= !EDX_HTT;
            }
        }
        LEAF_CACHE => {
            // EAX[31:26]: cores per package - 1 (one core per vCPU).
            entry.eax = (entry.eax & 0x03ff_ffff) | (count32.saturating_sub(1) << 26);
        }
        LEAF_POWER => {
            // No thermal/power management or frequency feedback.
            entry.eax = 0;
            entry.ecx = 0;
        }
        LEAF_PMU => {
            // No performance monitoring unit.
            entry.eax = 0;
            entry.ebx = 0;
            entry.ecx = 0;
            entry.edx = 0;
        }
        LEAF_TOPOLOGY | LEAF_TOPOLOGY_V2 => {
            entry.edx = index32;
            match entry.index {
                // SMT level: one thread per core.
                0 => {
                    entry.eax = 0;
                    entry.ebx = 1;
                    entry.ecx = 1 << 8;
                }
                // Core level: `count` cores per package.
                1 => {
                    entry.eax = shift_for(count32);
                    entry.ebx = count32;
                    entry.ecx = (2 << 8) | 1;
                }
                n => {
                    entry.eax = 0;
                    entry.ebx = 0;
                    entry.ecx = n & 0xff;
                }
            }
        }
        f if (LEAF_BRAND_FIRST..LEAF_BRAND_FIRST + 3).contains(&f) => {
            let start = usize::try_from(f - LEAF_BRAND_FIRST).unwrap_or(0) * 16;
            let word = |i: usize| {
                let b = &BRAND[start + i * 4..start + i * 4 + 4];
                u32::from_le_bytes([b[0], b[1], b[2], b[3]])
            };
            entry.eax = word(0);
            entry.ebx = word(1);
            entry.ecx = word(2);
            entry.edx = word(3);
        }
        _ => {}
    }
}

/// Number of bits to shift an x2APIC id right to get the package id.
fn shift_for(count: u32) -> u32 {
    if count <= 1 {
        0
    } else {
        32 - (count - 1).leading_zeros()
    }
}

fn apply_mask(entry: &mut kvm_cpuid_entry2, mask: &CpuidMask) {
    if entry.function != mask.leaf {
        return;
    }
    if let Some(subleaf) = mask.subleaf {
        let indexed = entry.flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX != 0;
        if indexed && entry.index != subleaf {
            return;
        }
    }
    let reg = match mask.register {
        CpuidReg::Eax => &mut entry.eax,
        CpuidReg::Ebx => &mut entry.ebx,
        CpuidReg::Ecx => &mut entry.ecx,
        CpuidReg::Edx => &mut entry.edx,
    };
    *reg &= !mask.bits;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(function: u32, index: u32) -> kvm_cpuid_entry2 {
        kvm_cpuid_entry2 {
            function,
            index,
            ebx: 0xdead_beef,
            edx: 0xffff_ffff,
            ..Default::default()
        }
    }

    fn filtered(entries: &[kvm_cpuid_entry2], index: u8, count: u8, masks: &[CpuidMask]) -> CpuId {
        let mut cpuid = CpuId::from_entries(entries).expect("cpuid");
        filter_cpuid(&mut cpuid, index, count, masks);
        cpuid
    }

    #[test]
    fn leaf1_has_apic_id_count_and_hypervisor_bit() {
        let cpuid = filtered(&[entry(1, 0)], 2, 4, &[]);
        let e = cpuid.as_slice()[0];
        assert_eq!(e.ebx >> 24, 2);
        assert_eq!((e.ebx >> 16) & 0xff, 4);
        assert_eq!(e.ebx & 0xffff, 0xbeef);
        assert_ne!(e.ecx & ECX_HYPERVISOR, 0);
        assert_ne!(e.edx & EDX_HTT, 0);
        let single = filtered(&[entry(1, 0)], 0, 1, &[]).as_slice()[0];
        assert_eq!(single.edx & EDX_HTT, 0);
    }

    #[test]
    fn topology_leaf_describes_cores() {
        let cpuid = filtered(&[entry(0xb, 0), entry(0xb, 1), entry(0xb, 2)], 3, 4, &[]);
        let s = cpuid.as_slice();
        assert_eq!((s[0].ebx, s[0].ecx, s[0].edx), (1, 1 << 8, 3));
        assert_eq!((s[1].eax, s[1].ebx, s[1].ecx), (2, 4, (2 << 8) | 1));
        assert_eq!((s[2].ebx, s[2].ecx), (0, 2));
    }

    #[test]
    fn brand_string_is_vessels() {
        let entries: Vec<_> = (0..3).map(|i| entry(LEAF_BRAND_FIRST + i, 0)).collect();
        let cpuid = filtered(&entries, 0, 1, &[]);
        let mut brand = Vec::new();
        for e in cpuid.as_slice() {
            for r in [e.eax, e.ebx, e.ecx, e.edx] {
                brand.extend_from_slice(&r.to_le_bytes());
            }
        }
        assert_eq!(&brand[..], &BRAND[..]);
    }

    #[test]
    fn masks_clear_bits() {
        let mask = CpuidMask {
            leaf: 7,
            subleaf: Some(0),
            register: CpuidReg::Ebx,
            bits: 0xff,
        };
        let cpuid = filtered(&[entry(7, 0)], 0, 1, &[mask]);
        assert_eq!(cpuid.as_slice()[0].ebx, 0xdead_be00);
    }

    #[test]
    fn shift_covers_count() {
        assert_eq!(shift_for(1), 0);
        assert_eq!(shift_for(2), 1);
        assert_eq!(shift_for(3), 2);
        assert_eq!(shift_for(4), 2);
        assert_eq!(shift_for(5), 3);
    }
}
