//! The i8042 keyboard controller, reduced to what a microVM needs: the
//! reset line (command 0xFE on port 0x64, how Linux reboots a PC without
//! ACPI) and enough of the command set for the kernel's probe to find a
//! controller with nothing attached.

use crate::devices::bus::BusDevice;

/// Port base (data port 0x60; command/status port 0x64 = base + 4).
pub const I8042_BASE: u64 = 0x60;
/// Ports decoded, 0x60..=0x64.
pub const I8042_LEN: u64 = 5;

const DATA: u64 = 0;
const COMMAND: u64 = 4;
const CMD_READ_CTR: u8 = 0x20;
const CMD_WRITE_CTR: u8 = 0x60;
const CMD_SELF_TEST: u8 = 0xaa;
const CMD_KBD_TEST: u8 = 0xab;
const CMD_AUX_TEST: u8 = 0xa9;
const CMD_RESET_CPU: u8 = 0xfe;
const STATUS_OBF: u8 = 0x01;
const STATUS_SYS: u8 = 0x04;
const SELF_TEST_OK: u8 = 0x55;

/// The controller.
pub struct I8042 {
    on_reset: Box<dyn Fn() + Send>,
    ctr: u8,
    output: Option<u8>,
    writing_ctr: bool,
}

impl std::fmt::Debug for I8042 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("I8042")
            .field("ctr", &self.ctr)
            .field("output", &self.output)
            .finish_non_exhaustive()
    }
}

impl I8042 {
    /// A controller that calls `on_reset` when the guest pulses the reset line.
    pub fn new(on_reset: impl Fn() + Send + 'static) -> Self {
        I8042 {
            on_reset: Box::new(on_reset),
            ctr: STATUS_SYS,
            output: None,
            writing_ctr: false,
        }
    }

    fn command(&mut self, cmd: u8) {
        match cmd {
            CMD_READ_CTR => self.output = Some(self.ctr),
            CMD_WRITE_CTR => self.writing_ctr = true,
            CMD_SELF_TEST => self.output = Some(SELF_TEST_OK),
            CMD_KBD_TEST | CMD_AUX_TEST => self.output = Some(0),
            CMD_RESET_CPU => (self.on_reset)(),
            _ => {}
        }
    }
}

impl BusDevice for I8042 {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        let value = match offset {
            DATA => self.output.take().unwrap_or(0),
            COMMAND => STATUS_SYS | if self.output.is_some() { STATUS_OBF } else { 0 },
            _ => 0xff,
        };
        data.fill(0);
        if let Some(first) = data.first_mut() {
            *first = value;
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        let Some(&value) = data.first() else {
            return;
        };
        match offset {
            COMMAND => self.command(value),
            DATA if self.writing_ctr => {
                self.ctr = value;
                self.writing_ctr = false;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn fe_on_the_command_port_resets() {
        let resets = Arc::new(AtomicUsize::new(0));
        let counter = resets.clone();
        let mut dev = I8042::new(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        dev.write(DATA, &[0xfe]);
        assert_eq!(resets.load(Ordering::SeqCst), 0);
        dev.write(COMMAND, &[0xfe]);
        assert_eq!(resets.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn probe_sees_a_controller() {
        let mut dev = I8042::new(|| {});
        let mut b = [0u8];
        dev.write(COMMAND, &[CMD_SELF_TEST]);
        dev.read(COMMAND, &mut b);
        assert_eq!(b[0] & STATUS_OBF, STATUS_OBF);
        dev.read(DATA, &mut b);
        assert_eq!(b[0], SELF_TEST_OK);
        dev.write(COMMAND, &[CMD_WRITE_CTR]);
        dev.write(DATA, &[0x45]);
        dev.write(COMMAND, &[CMD_READ_CTR]);
        dev.read(DATA, &mut b);
        assert_eq!(b[0], 0x45);
        dev.read(COMMAND, &mut b);
        assert_eq!(b[0] & STATUS_OBF, 0);
    }
}
