//! The ACPI sleep registers of a hardware-reduced platform (ACPI 6, 4.8.3.7
//! and 4.8.3.8), reduced to what a microVM needs: power-off. The FADT
//! announces the control register at [`SLEEP_CONTROL_PORT`] and the status
//! register at [`SLEEP_STATUS_PORT`]; Linux powers off by writing SLP_EN
//! with the sleep type of `\_S5_` (5, from the DSDT) to the control
//! register. Every other write is ignored (a microVM does not sleep), and
//! both registers read as 0. The device has no state, so snapshots need
//! nothing from it.

use crate::devices::bus::BusDevice;

/// Port of the sleep control register (an 8-bit register).
pub const SLEEP_CONTROL_PORT: u16 = 0x600;
/// Port of the sleep status register (an 8-bit register).
pub const SLEEP_STATUS_PORT: u16 = 0x601;
/// First port decoded.
pub const ACPI_SLEEP_BASE: u64 = SLEEP_CONTROL_PORT as u64;
/// Ports decoded: control and status.
pub const ACPI_SLEEP_LEN: u64 = 2;

/// The sleep type `\_S5_` gives in the DSDT (soft off).
pub const S5_SLEEP_TYPE: u8 = 5;
/// SLP_TYPx: bits 2..=4 of the sleep control register.
const SLP_TYP_SHIFT: u8 = 2;
const SLP_TYP_MASK: u8 = 0b111;
/// SLP_EN: bit 5, "enter the sleep state SLP_TYPx names".
pub const SLP_EN: u8 = 1 << 5;

/// The control register's value that powers off: S5 with SLP_EN.
pub const fn power_off_value() -> u8 {
    (S5_SLEEP_TYPE << SLP_TYP_SHIFT) | SLP_EN
}

/// The sleep control and status registers.
pub struct AcpiSleep {
    on_power_off: Box<dyn Fn() + Send>,
}

impl std::fmt::Debug for AcpiSleep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcpiSleep").finish_non_exhaustive()
    }
}

impl AcpiSleep {
    /// Registers that call `on_power_off` when the guest enters S5.
    pub fn new(on_power_off: impl Fn() + Send + 'static) -> Self {
        AcpiSleep {
            on_power_off: Box::new(on_power_off),
        }
    }
}

impl BusDevice for AcpiSleep {
    fn read(&mut self, _offset: u64, data: &mut [u8]) {
        // No wake status ever: the guest never sleeps.
        data.fill(0);
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        let Some(&value) = data.first() else {
            return;
        };
        if offset != 0 || value & SLP_EN == 0 {
            // The status register (the guest clears WAK_STS before it
            // sleeps) or a control write that does not enter a state.
            return;
        }
        if (value >> SLP_TYP_SHIFT) & SLP_TYP_MASK == S5_SLEEP_TYPE {
            (self.on_power_off)();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    fn device() -> (AcpiSleep, Arc<AtomicUsize>) {
        let count = Arc::new(AtomicUsize::new(0));
        let seen = count.clone();
        let dev = AcpiSleep::new(move || {
            seen.fetch_add(1, Ordering::SeqCst);
        });
        (dev, count)
    }

    #[test]
    fn s5_with_slp_en_powers_off() {
        let (mut dev, count) = device();
        assert_eq!(power_off_value(), 0x34);
        dev.write(0, &[power_off_value()]);
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn other_writes_do_not() {
        let (mut dev, count) = device();
        // S5 without SLP_EN, S3 and S1 with it, WAK_STS to the status register.
        dev.write(0, &[S5_SLEEP_TYPE << 2]);
        dev.write(0, &[(3 << 2) | SLP_EN]);
        dev.write(0, &[(1 << 2) | SLP_EN]);
        dev.write(1, &[0x80]);
        dev.write(1, &[power_off_value()]);
        dev.write(0, &[]);
        assert_eq!(count.load(Ordering::SeqCst), 0);
        let mut data = [0xff; 2];
        dev.read(0, &mut data);
        assert_eq!(data, [0, 0]);
    }
}
