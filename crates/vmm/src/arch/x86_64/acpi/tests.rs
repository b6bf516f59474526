//! The tables are parsed back as a guest would: RSDP -> XSDT -> FADT ->
//! DSDT, and the MADT, with offsets from the ACPI 6 specification.

use super::*;
use crate::arch::x86_64::boot::{e820_map, E820_RESERVED};
use crate::arch::x86_64::mptable;
use crate::devices::legacy::acpi_sleep::S5_SLEEP_TYPE;

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn sum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |a, b| a.wrapping_add(*b))
}

/// The tables as the guest sees them, from guest physical addresses.
struct Parsed {
    blob: Vec<u8>,
}

impl Parsed {
    fn new(num_cpus: u8, virtio: &[MmioDevice]) -> Self {
        Parsed {
            blob: build(num_cpus, virtio).expect("tables"),
        }
    }

    fn at(&self, addr: u64, len: usize) -> &[u8] {
        let offset = usize::try_from(addr - ACPI_START).expect("offset");
        &self.blob[offset..offset + len]
    }

    /// The system description table at `addr`, checked: signature and a
    /// zero checksum over its whole length.
    fn table(&self, addr: u64, signature: &[u8; 4]) -> &[u8] {
        let header = self.at(addr, 36);
        assert_eq!(&header[0..4], signature);
        let len = usize::try_from(u32_at(header, 4)).expect("len");
        let table = self.at(addr, len);
        assert_eq!(
            sum(table),
            0,
            "checksum of {}",
            String::from_utf8_lossy(signature)
        );
        assert_eq!(&table[10..16], b"VESSEL");
        table
    }

    fn rsdp(&self) -> &[u8] {
        let rsdp = self.at(ACPI_START, 36);
        assert_eq!(&rsdp[0..8], b"RSD PTR ");
        assert_eq!(sum(&rsdp[0..20]), 0, "RSDP checksum");
        assert_eq!(rsdp[15], 2, "ACPI 2.0+ RSDP");
        assert_eq!(u32_at(rsdp, 20), 36, "RSDP length");
        assert_eq!(sum(rsdp), 0, "RSDP extended checksum");
        rsdp
    }

    /// The tables the XSDT lists, by signature.
    fn xsdt_entries(&self) -> Vec<([u8; 4], u64)> {
        let xsdt_addr = u64_at(self.rsdp(), 24);
        let xsdt = self.table(xsdt_addr, b"XSDT");
        (36..xsdt.len())
            .step_by(8)
            .map(|at| {
                let addr = u64_at(xsdt, at);
                let sig: [u8; 4] = self.at(addr, 4).try_into().expect("sig");
                (sig, addr)
            })
            .collect()
    }

    fn listed(&self, signature: &[u8; 4]) -> &[u8] {
        let (_, addr) = self
            .xsdt_entries()
            .into_iter()
            .find(|(sig, _)| sig == signature)
            .unwrap_or_else(|| panic!("{} not in the XSDT", String::from_utf8_lossy(signature)));
        self.table(addr, signature)
    }

    fn fadt(&self) -> &[u8] {
        self.listed(b"FACP")
    }

    fn dsdt(&self) -> &[u8] {
        let fadt = self.fadt();
        assert_eq!(u32_at(fadt, 40), 0, "no 32-bit DSDT pointer");
        self.table(u64_at(fadt, 140), b"DSDT")
    }

    /// The MADT's interrupt controller structures, as (type, bytes).
    fn madt_entries(&self) -> Vec<(u8, Vec<u8>)> {
        let madt = self.listed(b"APIC");
        let mut entries = Vec::new();
        let mut at = 44;
        while at < madt.len() {
            let (kind, len) = (madt[at], usize::from(madt[at + 1]));
            assert!(len >= 2, "entry length");
            entries.push((kind, madt[at..at + len].to_vec()));
            at += len;
        }
        assert_eq!(at, madt.len(), "entries fill the MADT exactly");
        entries
    }
}

#[test]
fn every_table_is_reachable_and_checksummed() {
    let p = Parsed::new(2, &[]);
    let sigs: Vec<[u8; 4]> = p.xsdt_entries().iter().map(|(s, _)| *s).collect();
    assert_eq!(sigs, vec![*b"FACP", *b"APIC"]);
    p.fadt();
    p.dsdt();
    p.madt_entries();
}

#[test]
fn fadt_is_hardware_reduced_with_sleep_registers_in_port_space() {
    let p = Parsed::new(1, &[]);
    let fadt = p.fadt();
    assert_eq!(fadt.len(), 276, "ACPI 6 FADT");
    assert_eq!(fadt[8], 6, "FADT revision");
    let flags = u32_at(fadt, 112);
    assert_ne!(flags & (1 << 20), 0, "HW_REDUCED_ACPI");
    let iapc = u16_at(fadt, 109);
    assert_ne!(iapc & (1 << 1), 0, "the i8042 is there");
    assert_eq!(iapc & (1 << 5), 0, "the CMOS RTC is there");
    // SLEEP_CONTROL_REG at 244, SLEEP_STATUS_REG at 256: generic address
    // structures (space id, bit width, bit offset, access size, address).
    for (at, port) in [(244, SLEEP_CONTROL_PORT), (256, SLEEP_STATUS_PORT)] {
        let gas = &fadt[at..at + 12];
        assert_eq!(gas[0], 1, "system I/O space");
        assert_eq!(gas[1], 8, "8-bit register");
        assert_eq!(gas[3], 1, "byte access");
        assert_eq!(u64_at(gas, 4), u64::from(port));
    }
    assert_eq!(&fadt[268..276], b"VESSELVM");
}

/// `Name (_S5_, Package () { 5, ... })` in the DSDT, decoded from the AML:
/// NameOp 0x08, NameSeg, PackageOp 0x12, PkgLength, NumElements, then the
/// elements (BytePrefix 0x0A + byte, or ZeroOp 0x00 / OneOp 0x01).
fn s5_sleep_type(aml: &[u8]) -> u8 {
    let at = aml
        .windows(5)
        .position(|w| w == [0x08, b'_', b'S', b'5', b'_'])
        .expect("Name (_S5_, ...) in the DSDT");
    let pkg = &aml[at + 5..];
    assert_eq!(pkg[0], 0x12, "a Package");
    // A one-byte PkgLength has its top two bits clear.
    assert_eq!(pkg[1] & 0xc0, 0);
    let len = usize::from(pkg[1]);
    assert!(pkg[2] >= 1, "at least SLP_TYPa");
    let elements = &pkg[3..1 + len];
    match elements[0] {
        0x0a => elements[1],
        0x00 => 0,
        0x01 => 1,
        op => panic!("unexpected opcode {op:#x} for SLP_TYPa"),
    }
}

#[test]
fn dsdt_has_s5_with_the_sleep_type_the_device_expects() {
    let p = Parsed::new(1, &[]);
    let dsdt = p.dsdt();
    assert_eq!(s5_sleep_type(&dsdt[36..]), S5_SLEEP_TYPE);
    // The whole definition, as the AML grammar spells it: Package of 4
    // elements, PkgLength 7 (itself, the count and 5 element bytes).
    let expected = [
        0x08, b'_', b'S', b'5', b'_', 0x12, 0x07, 0x04, 0x0a, 5, 0, 0, 0,
    ];
    assert!(dsdt.windows(expected.len()).any(|w| w == expected));
}

/// A compressed EISA id as a DWordPrefix'ed integer in AML.
fn eisa_id(id: &str) -> [u8; 5] {
    let b = id.as_bytes();
    let letter = |c: u8| u32::from(c - 0x40);
    let hex = |i: usize| u32::from_str_radix(&id[i..i + 1], 16).expect("hex digit");
    let value = (letter(b[0]) << 26)
        | (letter(b[1]) << 21)
        | (letter(b[2]) << 16)
        | (hex(3) << 12)
        | (hex(4) << 8)
        | (hex(5) << 4)
        | hex(6);
    let v = value.swap_bytes().to_le_bytes();
    [0x0c, v[0], v[1], v[2], v[3]]
}

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}

#[test]
fn dsdt_announces_the_legacy_devices_and_each_virtio_device() {
    // PNP0501 is the well-known 0x0105D041 (bytes 41 D0 05 01).
    assert_eq!(eisa_id("PNP0501"), [0x0c, 0x41, 0xd0, 0x05, 0x01]);
    let virtio = [
        MmioDevice {
            base: 0xd000_0000,
            irq: 5,
        },
        MmioDevice {
            base: 0xd000_1000,
            irq: 6,
        },
    ];
    let p = Parsed::new(1, &virtio);
    let dsdt = p.dsdt();
    for id in ["PNP0501", "PNP0303", "PNP0B00"] {
        assert_eq!(count(dsdt, &eisa_id(id)), 1, "{id}");
    }
    assert_eq!(count(dsdt, b"LNRO0005\0"), 2);
    for dev in virtio {
        // Memory32Fixed descriptor: 0x86, length 9, read-write, base, 4 KiB.
        let mut mem = vec![0x86, 9, 0, 1];
        mem.extend_from_slice(&u32::try_from(dev.base).expect("32-bit").to_le_bytes());
        mem.extend_from_slice(&0x1000u32.to_le_bytes());
        assert_eq!(count(dsdt, &mem), 1);
        // Extended interrupt descriptor: 0x89, length 6, consumer + edge,
        // one interrupt.
        let mut irq = vec![0x89, 6, 0, 0b0011, 1];
        irq.extend_from_slice(&dev.irq.to_le_bytes());
        assert_eq!(count(dsdt, &irq), 1);
    }
    // Without virtio devices, none is announced.
    assert_eq!(count(Parsed::new(1, &[]).dsdt(), b"LNRO0005"), 0);
}

#[test]
fn madt_has_a_local_apic_per_vcpu_and_the_mp_tables_ioapic() {
    for cpus in [1u8, 2, 4, MAX_CPUS] {
        let p = Parsed::new(cpus, &[]);
        let madt = p.listed(b"APIC");
        assert_eq!(u64::from(u32_at(madt, 36)), APIC_START);
        let entries = p.madt_entries();
        let lapics: Vec<&Vec<u8>> = entries
            .iter()
            .filter(|(k, _)| *k == 0)
            .map(|(_, e)| e)
            .collect();
        assert_eq!(lapics.len(), usize::from(cpus));
        for (i, e) in lapics.iter().enumerate() {
            assert_eq!(e.len(), 8);
            assert_eq!(usize::from(e[2]), i, "processor uid");
            assert_eq!(usize::from(e[3]), i, "APIC id");
            assert_eq!(u32_at(e, 4), 1, "enabled");
        }
        let ioapics: Vec<&Vec<u8>> = entries
            .iter()
            .filter(|(k, _)| *k == 1)
            .map(|(_, e)| e)
            .collect();
        assert_eq!(ioapics.len(), 1);
        let ioapic = ioapics[0];
        assert_eq!(ioapic[2], cpus + 1, "I/O APIC id as in the MP table");
        assert_eq!(u64::from(u32_at(ioapic, 4)), IOAPIC_START);
        assert_eq!(u32_at(ioapic, 8), 0, "GSI base");
        // The MP table maps every ISA IRQ to the same pin: no overrides.
        assert!(entries.iter().all(|(k, _)| *k != 2));
        let nmi: Vec<&Vec<u8>> = entries
            .iter()
            .filter(|(k, _)| *k == 4)
            .map(|(_, e)| e)
            .collect();
        assert_eq!(nmi.len(), 1);
        assert_eq!(nmi[0].as_slice(), &[4, 6, 0xff, 0, 0, 1]);
    }
}

#[test]
fn madt_agrees_with_the_mp_table() {
    let mp = mptable::build(3, 0).expect("mp table");
    // The I/O APIC entry follows 3 processor entries (20 bytes each) and
    // the bus entry (8) after the 16-byte pointer and the 44-byte header.
    let ioapic = &mp[16 + 44 + 3 * 20 + 8..];
    assert_eq!(ioapic[0], 2, "an MP I/O APIC entry");
    let p = Parsed::new(3, &[]);
    let madt_ioapic = p
        .madt_entries()
        .into_iter()
        .find(|(k, _)| *k == 1)
        .expect("I/O APIC")
        .1;
    assert_eq!(madt_ioapic[2], ioapic[1], "same I/O APIC id");
    assert_eq!(u32_at(&madt_ioapic, 4), u32_at(ioapic, 4), "same address");
}

#[test]
fn tables_are_written_to_reserved_guest_memory() {
    let regions = crate::memory::arch_memory_regions(64 << 20);
    let mem = GuestMemoryMmap::from_ranges(&regions).expect("memory");
    let rsdp = setup_acpi_tables(&mem, 2, &[]).expect("written");
    assert_eq!(rsdp, ACPI_START);
    let len = build(2, &[]).expect("tables").len();
    let mut written = vec![0u8; len];
    mem.read_slice(&mut written, GuestAddress(rsdp))
        .expect("read");
    assert_eq!(Parsed { blob: written }.xsdt_entries().len(), 2);
    let reserved = e820_map(&mem)
        .into_iter()
        .find(|e| e.kind == E820_RESERVED)
        .expect("a reserved range");
    assert!(reserved.addr <= rsdp);
    assert!(rsdp + len as u64 <= reserved.addr + reserved.size);
}

#[test]
fn bad_counts_and_far_devices_are_refused() {
    assert!(matches!(build(0, &[]), Err(AcpiError::NoCpus)));
    assert!(matches!(build(255, &[]), Err(AcpiError::TooManyCpus(255))));
    let far = MmioDevice {
        base: 1 << 32,
        irq: 5,
    };
    assert!(matches!(
        build(1, &[far]),
        Err(AcpiError::MmioAbove4G(0x1_0000_0000))
    ));
}
