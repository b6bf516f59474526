//! The i8042 keyboard controller, reduced to what a microVM needs: the
//! reset line (command 0xFE on port 0x64, how Linux reboots a PC without
//! ACPI) and enough of the command set for the kernel's probe to find a
//! controller with nothing attached; plus Ctrl+Alt+Del, pressed by the
//! API's `SendCtrlAltDel` (Linux reboots on it, as a PC does).

use std::collections::VecDeque;

use vmm_sys_util::eventfd::EventFd;

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
/// Controller configuration byte: keyboard interrupt enabled.
const CTR_KBD_INT: u8 = 0x01;
/// The keyboard's IRQ line.
pub const KBD_IRQ: u32 = 1;
/// Scan code set 2 make codes of Ctrl, Alt and Del (the set a PC keyboard
/// sends; the guest's driver translates): what the guest reads on port 0x60.
pub const CTRL_ALT_DEL: [u8; 4] = [0x14, 0x11, 0xe0, 0x71];
/// Most bytes waiting for the guest: keystrokes beyond it are dropped, as a
/// real controller's buffer drops them.
const OUTPUT_CAPACITY: usize = 16;

/// The controller.
pub struct I8042 {
    on_reset: Box<dyn Fn() + Send>,
    irq: Option<EventFd>,
    ctr: u8,
    output: VecDeque<u8>,
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
            irq: None,
            ctr: STATUS_SYS,
            output: VecDeque::new(),
            writing_ctr: false,
        }
    }

    /// Raises the keyboard interrupt through `irq` (an irqfd on
    /// [`KBD_IRQ`]) when a keystroke waits and the guest enabled it.
    pub fn with_irq(mut self, irq: EventFd) -> Self {
        self.irq = Some(irq);
        self
    }

    /// Presses Ctrl+Alt+Del: queues the scan codes and interrupts the guest.
    pub fn send_ctrl_alt_del(&mut self) {
        for code in CTRL_ALT_DEL {
            self.push(code);
        }
        self.interrupt();
    }

    fn push(&mut self, byte: u8) {
        if self.output.len() < OUTPUT_CAPACITY {
            self.output.push_back(byte);
        }
    }

    fn interrupt(&self) {
        if self.ctr & CTR_KBD_INT != 0 && !self.output.is_empty() {
            if let Some(irq) = &self.irq {
                // A lost edge only delays the guest until its next poll.
                let _ = irq.write(1);
            }
        }
    }

    fn command(&mut self, cmd: u8) {
        match cmd {
            CMD_READ_CTR => self.push(self.ctr),
            CMD_WRITE_CTR => self.writing_ctr = true,
            CMD_SELF_TEST => self.push(SELF_TEST_OK),
            CMD_KBD_TEST | CMD_AUX_TEST => self.push(0),
            CMD_RESET_CPU => (self.on_reset)(),
            _ => {}
        }
    }
}

impl BusDevice for I8042 {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        let value = match offset {
            DATA => {
                let byte = self.output.pop_front().unwrap_or(0);
                // One interrupt per byte, as the guest's handler reads one.
                self.interrupt();
                byte
            }
            COMMAND => {
                STATUS_SYS
                    | if self.output.is_empty() {
                        0
                    } else {
                        STATUS_OBF
                    }
            }
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

/// The controller in a snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct I8042State {
    /// The controller configuration byte.
    pub ctr: u8,
    /// Bytes waiting for the guest on the data port.
    pub output: Vec<u8>,
    /// Whether the next data-port write is the configuration byte.
    pub writing_ctr: bool,
}

impl I8042State {
    /// Refuses more waiting bytes than the controller buffers.
    pub fn validate(&self) -> Result<(), crate::snapshot::state::InvalidState> {
        if self.output.len() > OUTPUT_CAPACITY {
            return Err(crate::snapshot::state::InvalidState(format!(
                "i8042: {} bytes waiting in a {OUTPUT_CAPACITY}-byte buffer",
                self.output.len()
            )));
        }
        Ok(())
    }
}

/// Why an i8042 state is refused.
#[derive(Debug, thiserror::Error)]
#[error("Cannot restore the i8042 controller: {0}")]
pub struct I8042RestoreError(#[source] crate::snapshot::state::InvalidState);

/// What a restored i8042 needs besides its state.
pub struct I8042Args {
    /// Called when the guest pulses the reset line.
    pub on_reset: Box<dyn Fn() + Send>,
    /// The keyboard interrupt (an irqfd on [`KBD_IRQ`]).
    pub irq: EventFd,
}

impl std::fmt::Debug for I8042Args {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("I8042Args").finish_non_exhaustive()
    }
}

impl crate::snapshot::Persist for I8042 {
    type State = I8042State;
    type ConstructorArgs = I8042Args;
    type Error = I8042RestoreError;

    fn save(&self) -> I8042State {
        I8042State {
            ctr: self.ctr,
            output: self.output.iter().copied().collect(),
            writing_ctr: self.writing_ctr,
        }
    }

    fn restore(args: I8042Args, state: &I8042State) -> Result<Self, I8042RestoreError> {
        state.validate().map_err(I8042RestoreError)?;
        Ok(I8042 {
            on_reset: args.on_reset,
            irq: Some(args.irq),
            ctr: state.ctr,
            output: state.output.iter().copied().collect(),
            writing_ctr: state.writing_ctr,
        })
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

    #[test]
    fn state_round_trips_and_an_overlong_buffer_is_refused() {
        use crate::snapshot::Persist;
        let mut dev = I8042::new(|| {});
        dev.write(COMMAND, &[CMD_WRITE_CTR]);
        dev.write(DATA, &[CTR_KBD_INT]);
        dev.send_ctrl_alt_del();
        let state = dev.save();
        assert_eq!(state.ctr, CTR_KBD_INT);
        assert_eq!(state.output, CTRL_ALT_DEL);
        let args = || I8042Args {
            on_reset: Box::new(|| {}),
            irq: EventFd::new(libc::EFD_NONBLOCK).unwrap(),
        };
        let mut back = I8042::restore(args(), &state).expect("restore");
        let mut b = [0u8];
        back.read(DATA, &mut b);
        assert_eq!(b[0], CTRL_ALT_DEL[0]);
        let long = I8042State {
            output: vec![0; OUTPUT_CAPACITY + 1],
            ..state
        };
        assert!(I8042::restore(args(), &long).is_err());
    }

    #[test]
    fn ctrl_alt_del_queues_scan_codes_and_interrupts_when_enabled() {
        let irq = EventFd::new(libc::EFD_NONBLOCK).unwrap();
        let mut dev = I8042::new(|| {}).with_irq(irq.try_clone().unwrap());
        dev.send_ctrl_alt_del();
        // Keyboard interrupt not enabled yet: no interrupt.
        assert!(irq.read().is_err());
        let mut b = [0u8];
        dev.write(COMMAND, &[CMD_WRITE_CTR]);
        dev.write(DATA, &[CTR_KBD_INT]);
        let mut got = Vec::new();
        loop {
            dev.read(COMMAND, &mut b);
            if b[0] & STATUS_OBF == 0 {
                break;
            }
            dev.read(DATA, &mut b);
            got.push(b[0]);
        }
        assert_eq!(got, CTRL_ALT_DEL);
        // Each byte read with more waiting raised the line.
        assert!(irq.read().unwrap() >= 1);
    }
}
