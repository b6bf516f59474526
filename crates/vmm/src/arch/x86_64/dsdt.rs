//! The DSDT's AML: `\_S5_` (the sleep type of soft-off, for power-off) and
//! the devices a guest cannot otherwise find on a hardware-reduced ACPI
//! platform.
//!
//! On such a platform Linux has no legacy PIC and sets up no ISA interrupt
//! by default, so a device that takes an interrupt must be announced with
//! it: COM1 (PNP0501, IRQ 4), the i8042 (PNP0303, IRQ 1), the CMOS RTC
//! (PNP0B00, IRQ 8) and each virtio-mmio device (LNRO0005, its register page
//! and line). The virtio devices are on the command line too
//! (`virtio_mmio.device=`), for kernels without ACPI; a kernel that has
//! both binds the first one it probes and finds the range taken for the
//! other.

use acpi_tables::aml::{
    Device, EISAName, Interrupt, Memory32Fixed, Name, Package, Path, ResourceTemplate, Scope, IO,
};
use acpi_tables::Aml;

use super::acpi::AcpiError;
use crate::devices::legacy::acpi_sleep::S5_SLEEP_TYPE;
use crate::devices::legacy::{cmos, i8042, serial};
use crate::devices::virtio::mmio::MMIO_LEN;

/// The CMOS RTC's line on a PC.
const RTC_IRQ: u32 = 8;

/// A virtio-mmio device: its register page and interrupt line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MmioDevice {
    /// Register page address.
    pub base: u64,
    /// Interrupt line (GSI).
    pub irq: u32,
}

/// `Interrupt(ResourceConsumer, Edge, ActiveHigh, Exclusive) { gsi }`: how
/// vessel's lines behave (irqfd pulses, as ISA edges).
fn edge_irq(gsi: u32) -> Interrupt {
    Interrupt::new(true, true, false, false, gsi)
}

fn port(base: u64) -> u16 {
    u16::try_from(base).unwrap_or(u16::MAX)
}

/// `Device (NAME) { _HID, _UID, _CRS }` as AML bytes.
fn device(name: &str, hid: &dyn Aml, uid: u32, resources: Vec<&dyn Aml>) -> Vec<u8> {
    let hid = Name::new("_HID".into(), hid);
    let uid = Name::new("_UID".into(), &uid);
    let crs = Name::new("_CRS".into(), &ResourceTemplate::new(resources));
    let mut bytes = Vec::new();
    Device::new(Path::new(name), vec![&hid, &uid, &crs]).to_aml_bytes(&mut bytes);
    bytes
}

fn legacy_devices() -> Vec<u8> {
    let com1_base = port(serial::COM1_BASE);
    let com1_io = IO::new(com1_base, com1_base, 1, serial::COM_PORT_LEN as u8);
    let com1_irq = edge_irq(serial::COM1_IRQ);
    let mut bytes = device(
        "COM1",
        &EISAName::new("PNP0501"),
        0,
        vec![&com1_io, &com1_irq],
    );

    let data = port(i8042::I8042_BASE);
    let command = data + 4;
    let kbd_data = IO::new(data, data, 1, 1);
    let kbd_command = IO::new(command, command, 1, 1);
    let kbd_irq = edge_irq(i8042::KBD_IRQ);
    bytes.extend(device(
        "PS2K",
        &EISAName::new("PNP0303"),
        0,
        vec![&kbd_data, &kbd_command, &kbd_irq],
    ));

    let cmos_base = port(cmos::CMOS_BASE);
    let rtc_io = IO::new(cmos_base, cmos_base, 1, cmos::CMOS_LEN as u8);
    // Without its line in _CRS Linux's rtc-cmos asks for IRQ 8 all the same
    // and fails; vessel's RTC never raises it (no alarms).
    let rtc_irq = edge_irq(RTC_IRQ);
    bytes.extend(device(
        "RTC_",
        &EISAName::new("PNP0B00"),
        0,
        vec![&rtc_io, &rtc_irq],
    ));
    bytes
}

fn virtio_devices(virtio: &[MmioDevice]) -> Result<Vec<u8>, AcpiError> {
    let mut bytes = Vec::new();
    let len = u32::try_from(MMIO_LEN).unwrap_or(u32::MAX);
    for (index, dev) in virtio.iter().enumerate() {
        let base = u32::try_from(dev.base).map_err(|_| AcpiError::MmioAbove4G(dev.base))?;
        let regs = Memory32Fixed::new(true, base, len);
        let irq = edge_irq(dev.irq);
        let uid = u32::try_from(index).unwrap_or(u32::MAX);
        // Names V000, V001, ... (at most 19 devices, see MAX_VIRTIO_DEVICES).
        let name = format!("V{:03}", index % 1000);
        bytes.extend(device(&name, &"LNRO0005", uid, vec![&regs, &irq]));
    }
    Ok(bytes)
}

/// The DSDT's definition block: `Name (_S5_, Package () { 5, 0, 0, 0 })`
/// and `Scope (\_SB_)` with the devices.
pub fn aml(virtio: &[MmioDevice]) -> Result<Vec<u8>, AcpiError> {
    let mut bytes = Vec::new();
    // SLP_TYPa, SLP_TYPb and two reserved elements; a hardware-reduced
    // platform writes SLP_TYPa to the sleep control register.
    let zero = 0u8;
    let s5 = Package::new(vec![&S5_SLEEP_TYPE, &zero, &zero, &zero]);
    Name::new("_S5_".into(), &s5).to_aml_bytes(&mut bytes);
    let mut devices = legacy_devices();
    devices.extend(virtio_devices(virtio)?);
    bytes.extend(Scope::raw("\\_SB_".into(), devices));
    Ok(bytes)
}
