//! Global descriptor table entries and their `kvm_segment` form.

use kvm_bindings::kvm_segment;

/// Builds a GDT entry from its flags (the upper 4 bits of byte 6 and byte 5,
/// as `0xF0FF` with the limit nibble masked out), base and limit.
pub const fn gdt_entry(flags: u16, base: u32, limit: u32) -> u64 {
    ((base as u64 & 0xff00_0000) << (56 - 24))
        | ((flags as u64 & 0x0000_f0ff) << 40)
        | ((limit as u64 & 0x000f_0000) << (48 - 16))
        | ((base as u64 & 0x00ff_ffff) << 16)
        | (limit as u64 & 0x0000_ffff)
}

fn base(entry: u64) -> u64 {
    ((entry & 0xff00_0000_0000_0000) >> 32)
        | ((entry & 0x0000_00ff_0000_0000) >> 16)
        | ((entry & 0x0000_0000_ffff_0000) >> 16)
}

fn limit(entry: u64) -> u32 {
    let raw = ((entry & 0x000f_0000_0000_0000) >> 32) | (entry & 0x0000_0000_0000_ffff);
    let raw = u32::try_from(raw).unwrap_or(u32::MAX);
    // With the granularity bit the limit counts 4 KiB pages.
    if granularity(entry) != 0 {
        (raw << 12) | 0xfff
    } else {
        raw
    }
}

fn bit(entry: u64, shift: u32) -> u8 {
    u8::from((entry >> shift) & 1 == 1)
}

fn granularity(entry: u64) -> u8 {
    bit(entry, 55)
}

/// The segment register contents KVM expects for the GDT entry at `index`.
pub fn kvm_segment_from_gdt(entry: u64, index: u8) -> kvm_segment {
    let present = bit(entry, 47);
    kvm_segment {
        base: base(entry),
        limit: limit(entry),
        selector: u16::from(index) * 8,
        type_: u8::try_from((entry >> 40) & 0xf).unwrap_or(0),
        present,
        dpl: u8::try_from((entry >> 45) & 0x3).unwrap_or(0),
        db: bit(entry, 54),
        s: bit(entry, 44),
        l: bit(entry, 53),
        g: granularity(entry),
        avl: bit(entry, 52),
        padding: 0,
        unusable: u8::from(present == 0),
    }
}

/// Flat 64-bit code segment (long mode).
pub const CODE64: u64 = gdt_entry(0xa09b, 0, 0xfffff);
/// Flat 32-bit code segment (protected mode, PVH entry).
pub const CODE32: u64 = gdt_entry(0xc09b, 0, 0xfffff);
/// Flat data segment.
pub const DATA: u64 = gdt_entry(0xc093, 0, 0xfffff);
/// 32-bit busy TSS with base 0 and limit 0x67, as PVH requires.
pub const TSS: u64 = gdt_entry(0x008b, 0, 0x67);

/// Selector index of the code segment in the boot GDT.
pub const CODE_INDEX: u8 = 1;
/// Selector index of the data segment in the boot GDT.
pub const DATA_INDEX: u8 = 2;
/// Selector index of the TSS in the boot GDT.
pub const TSS_INDEX: u8 = 3;

/// The boot GDT: null, code, data, TSS.
pub fn boot_gdt(long_mode: bool) -> [u64; 4] {
    [0, if long_mode { CODE64 } else { CODE32 }, DATA, TSS]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code64_segment() {
        let seg = kvm_segment_from_gdt(CODE64, CODE_INDEX);
        assert_eq!(seg.selector, 0x8);
        assert_eq!(seg.base, 0);
        assert_eq!(seg.limit, 0xffff_ffff);
        assert_eq!(seg.type_, 0xb);
        assert_eq!((seg.present, seg.s, seg.l, seg.db, seg.g), (1, 1, 1, 0, 1));
        assert_eq!(seg.unusable, 0);
    }

    #[test]
    fn code32_and_data_segments() {
        let code = kvm_segment_from_gdt(CODE32, CODE_INDEX);
        assert_eq!((code.l, code.db, code.type_), (0, 1, 0xb));
        let data = kvm_segment_from_gdt(DATA, DATA_INDEX);
        assert_eq!((data.selector, data.type_, data.db), (0x10, 0x3, 1));
        assert_eq!(data.limit, 0xffff_ffff);
    }

    #[test]
    fn tss_segment() {
        let tss = kvm_segment_from_gdt(TSS, TSS_INDEX);
        assert_eq!((tss.selector, tss.type_, tss.s, tss.g), (0x18, 0xb, 0, 0));
        assert_eq!(tss.limit, 0x67);
        assert_eq!(tss.present, 1);
    }

    #[test]
    fn base_round_trips() {
        let entry = gdt_entry(0xc093, 0x1234_5678, 0xfffff);
        assert_eq!(base(entry), 0x1234_5678);
    }
}
