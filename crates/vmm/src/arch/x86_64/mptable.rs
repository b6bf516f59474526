//! Intel MultiProcessor Specification 1.4 table: how a guest without ACPI
//! finds its processors, the I/O APIC and the interrupt wiring.
//!
//! The table is serialised by hand into a byte buffer (little endian, as the
//! specification lays it out), so no `unsafe` view of packed structs is
//! needed.

use vm_memory::{Bytes, GuestAddress, GuestMemoryError, GuestMemoryMmap};

use super::layout::{APIC_START, IOAPIC_PINS, IOAPIC_START, MPTABLE_START};

/// Most vCPUs the MP table can describe (APIC ids 0..=253, the I/O APIC
/// takes the next id and 0xff means "all").
pub const MAX_CPUS: u8 = 254;

const APIC_VERSION: u8 = 0x14;
const IOAPIC_VERSION: u8 = 0x11;
const CPU_ENABLED: u8 = 1;
const CPU_BOOTPROCESSOR: u8 = 2;
const CPU_SIGNATURE: u32 = 0x600;
const CPU_FEATURES: u32 = 0x201; // FPU, APIC
const ENTRY_PROCESSOR: u8 = 0;
const ENTRY_BUS: u8 = 1;
const ENTRY_IOAPIC: u8 = 2;
const ENTRY_IOINT: u8 = 3;
const ENTRY_LINT: u8 = 4;
const INT_TYPE_INT: u8 = 0;
const INT_TYPE_NMI: u8 = 1;
const INT_TYPE_EXTINT: u8 = 3;

/// Errors writing the MP table.
#[derive(Debug, thiserror::Error)]
pub enum MptableError {
    /// More vCPUs than the table can describe.
    #[error("The MP table describes at most {MAX_CPUS} vCPUs, {0} were asked for")]
    TooManyCpus(u8),
    /// No vCPUs.
    #[error("A VM needs at least one vCPU")]
    NoCpus,
    /// The table does not fit in guest memory.
    #[error("Cannot write the MP table into guest memory")]
    Write(#[source] GuestMemoryError),
}

fn checksum(bytes: &[u8]) -> u8 {
    let sum = bytes.iter().fold(0u8, |acc, b| acc.wrapping_add(*b));
    0u8.wrapping_sub(sum)
}

/// Builds the floating pointer structure and configuration table for
/// `num_cpus` processors, to be placed at `base`.
pub fn build(num_cpus: u8, base: u64) -> Result<Vec<u8>, MptableError> {
    if num_cpus == 0 {
        return Err(MptableError::NoCpus);
    }
    if num_cpus > MAX_CPUS {
        return Err(MptableError::TooManyCpus(num_cpus));
    }
    let ioapic_id = num_cpus + 1;
    let mut entries: Vec<u8> = Vec::new();
    let mut count: u16 = 0;
    for cpu in 0..num_cpus {
        let flags = CPU_ENABLED | if cpu == 0 { CPU_BOOTPROCESSOR } else { 0 };
        entries.extend_from_slice(&[ENTRY_PROCESSOR, cpu, APIC_VERSION, flags]);
        entries.extend_from_slice(&CPU_SIGNATURE.to_le_bytes());
        entries.extend_from_slice(&CPU_FEATURES.to_le_bytes());
        entries.extend_from_slice(&[0; 8]);
        count += 1;
    }
    entries.extend_from_slice(&[ENTRY_BUS, 0]);
    entries.extend_from_slice(b"ISA   ");
    count += 1;
    entries.extend_from_slice(&[ENTRY_IOAPIC, ioapic_id, IOAPIC_VERSION, 1]);
    entries.extend_from_slice(&u32::try_from(IOAPIC_START).unwrap_or(0).to_le_bytes());
    count += 1;
    for pin in 0..IOAPIC_PINS {
        // type, irq type, flags (u16: conforming), src bus, src irq, dst apic, dst pin
        entries.extend_from_slice(&[ENTRY_IOINT, INT_TYPE_INT, 0, 0, 0, pin, ioapic_id, pin]);
        count += 1;
    }
    entries.extend_from_slice(&[ENTRY_LINT, INT_TYPE_EXTINT, 0, 0, 0, 0, 0, 0]);
    entries.extend_from_slice(&[ENTRY_LINT, INT_TYPE_NMI, 0, 0, 0, 0, 0xff, 1]);
    count += 2;

    let table_addr = u32::try_from(base + 16).unwrap_or(0);
    let mut header: Vec<u8> = Vec::with_capacity(44);
    header.extend_from_slice(b"PCMP");
    let length = u16::try_from(44 + entries.len()).unwrap_or(u16::MAX);
    header.extend_from_slice(&length.to_le_bytes());
    header.extend_from_slice(&[4, 0]); // spec revision 1.4, checksum
    header.extend_from_slice(b"VESSEL  ");
    header.extend_from_slice(b"MICROVM     ");
    header.extend_from_slice(&0u32.to_le_bytes()); // OEM table pointer
    header.extend_from_slice(&0u16.to_le_bytes()); // OEM table size
    header.extend_from_slice(&count.to_le_bytes());
    header.extend_from_slice(&u32::try_from(APIC_START).unwrap_or(0).to_le_bytes());
    header.extend_from_slice(&[0, 0, 0, 0]); // extended length, checksum, reserved
    let mut table = header;
    table.extend_from_slice(&entries);
    table[7] = checksum(&table);

    let mut floating: Vec<u8> = Vec::with_capacity(16);
    floating.extend_from_slice(b"_MP_");
    floating.extend_from_slice(&table_addr.to_le_bytes());
    floating.extend_from_slice(&[1, 4, 0, 0, 0, 0, 0, 0]);
    floating[10] = checksum(&floating);

    floating.extend_from_slice(&table);
    Ok(floating)
}

/// Writes the MP table for `num_cpus` vCPUs at [`MPTABLE_START`].
pub fn setup_mptable(mem: &GuestMemoryMmap, num_cpus: u8) -> Result<(), MptableError> {
    let bytes = build(num_cpus, MPTABLE_START)?;
    mem.write_slice(&bytes, GuestAddress(MPTABLE_START))
        .map_err(MptableError::Write)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(bytes: &[u8]) -> u8 {
        bytes.iter().fold(0u8, |a, b| a.wrapping_add(*b))
    }

    #[test]
    fn checksums_are_zero() {
        let bytes = build(4, MPTABLE_START).expect("table");
        assert_eq!(&bytes[0..4], b"_MP_");
        assert_eq!(sum(&bytes[..16]), 0);
        assert_eq!(&bytes[16..20], b"PCMP");
        let len = usize::from(u16::from_le_bytes([bytes[20], bytes[21]]));
        assert_eq!(len, bytes.len() - 16);
        assert_eq!(sum(&bytes[16..]), 0);
    }

    #[test]
    fn describes_every_cpu_and_the_ioapic() {
        let bytes = build(3, MPTABLE_START).expect("table");
        let pointer = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
        assert_eq!(u64::from(pointer), MPTABLE_START + 16);
        let count = u16::from_le_bytes([bytes[16 + 34], bytes[16 + 35]]);
        assert_eq!(count, 3 + 1 + 1 + u16::from(IOAPIC_PINS) + 2);
        let cpus = &bytes[60..];
        assert_eq!(&cpus[0..4], &[0, 0, APIC_VERSION, 3]);
        assert_eq!(&cpus[20..24], &[0, 1, APIC_VERSION, 1]);
        assert_eq!(&cpus[40..44], &[0, 2, APIC_VERSION, 1]);
        let ioapic = &cpus[60 + 8..];
        assert_eq!(&ioapic[0..4], &[ENTRY_IOAPIC, 4, IOAPIC_VERSION, 1]);
    }

    #[test]
    fn rejects_bad_counts() {
        assert!(matches!(build(0, 0), Err(MptableError::NoCpus)));
        assert!(matches!(build(255, 0), Err(MptableError::TooManyCpus(255))));
    }
}
