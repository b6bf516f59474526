//! COM1: a 16550 UART (the rust-vmm `vm-superio` model) whose output goes
//! to a console sink and whose input can come from the host's stdin.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use vm_superio::{Serial, Trigger};
use vmm_sys_util::eventfd::EventFd;

use crate::devices::bus::{lock, BusDevice};
use crate::metrics::UartEvents;
use crate::seccomp::ThreadKind;

/// COM1's port base.
pub const COM1_BASE: u64 = 0x3f8;
/// Number of ports a 16550 decodes.
pub const COM_PORT_LEN: u64 = 8;
/// COM1's ISA interrupt line.
pub const COM1_IRQ: u32 = 4;

/// Where the guest's console output goes.
#[derive(Debug, Clone, Default)]
pub enum ConsoleOutput {
    /// The VMM's standard output.
    #[default]
    Stdout,
    /// A file, created or truncated.
    File(PathBuf),
    /// Discarded.
    None,
    /// An in-memory buffer the caller keeps a handle to.
    Buffer(Arc<Mutex<Vec<u8>>>),
}

/// Errors opening the console sink.
#[derive(Debug, thiserror::Error)]
pub enum SerialError {
    /// The output file cannot be opened.
    #[error("Cannot open the console output file {}", path.display())]
    OpenOutput {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The interrupt eventfd cannot be created.
    #[error("Cannot create the serial port's interrupt eventfd")]
    EventFd(#[source] io::Error),
    /// The stdin reader thread cannot be started.
    #[error("Cannot start the console input thread")]
    InputThread(#[source] io::Error),
    /// A snapshot's serial state cannot be applied.
    #[error("Cannot restore the serial port from its saved state")]
    Restore(#[source] vm_superio::serial::Error<io::Error>),
}

struct BufferWriter(Arc<Mutex<Vec<u8>>>);

impl Write for BufferWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        lock(&self.0).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl ConsoleOutput {
    /// Opens the sink.
    pub fn open(&self) -> Result<Box<dyn Write + Send>, SerialError> {
        Ok(match self {
            ConsoleOutput::Stdout => Box::new(io::stdout()),
            ConsoleOutput::File(path) => Box::new(
                OpenOptions::new()
                    .create(true)
                    .write(true)
                    .truncate(true)
                    .open(path)
                    .map_err(|source| SerialError::OpenOutput {
                        path: path.clone(),
                        source,
                    })?,
            ),
            ConsoleOutput::None => Box::new(io::sink()),
            ConsoleOutput::Buffer(buf) => Box::new(BufferWriter(buf.clone())),
        })
    }
}

/// Raises the serial interrupt by writing to an eventfd (an irqfd when KVM
/// has an in-kernel interrupt controller).
#[derive(Debug)]
pub struct EventFdTrigger(pub EventFd);

impl Trigger for EventFdTrigger {
    type E = io::Error;
    fn trigger(&self) -> io::Result<()> {
        self.0.write(1)
    }
}

type Uart = Serial<EventFdTrigger, UartEvents, Box<dyn Write + Send>>;

/// The 16550 on the port bus.
pub struct SerialDevice {
    uart: Uart,
}

impl std::fmt::Debug for SerialDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SerialDevice").finish_non_exhaustive()
    }
}

impl SerialDevice {
    /// A UART writing to `out`, raising its interrupt through `irq`.
    pub fn new(irq: EventFd, out: Box<dyn Write + Send>) -> Self {
        SerialDevice {
            uart: Serial::with_events(EventFdTrigger(irq), UartEvents, out),
        }
    }

    /// The eventfd the UART writes when it raises its interrupt.
    pub fn irq_evt(&self) -> &EventFd {
        &self.uart.interrupt_evt().0
    }

    /// Queues host input for the guest; returns how many bytes fitted.
    pub fn enqueue_input(&mut self, bytes: &[u8]) -> usize {
        if self.uart.fifo_capacity() == 0 {
            return 0;
        }
        self.uart.enqueue_raw_bytes(bytes).unwrap_or(0)
    }
}

impl BusDevice for SerialDevice {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        let value = match (u8::try_from(offset), data.len()) {
            (Ok(off), 1) => self.uart.read(off),
            _ => 0xff,
        };
        data.fill(value);
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        if let (Ok(off), [value]) = (u8::try_from(offset), data) {
            // A sink that fails (a closed pipe, a full disk) must not stop
            // the guest: its output is dropped.
            let _ = self.uart.write(off, *value);
        }
    }
}

/// The 16550's registers and receive FIFO in a snapshot (vm-superio's
/// `SerialState`, which has no serde support, field for field).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SerialState {
    /// Divisor latch, low byte.
    pub baud_divisor_low: u8,
    /// Divisor latch, high byte.
    pub baud_divisor_high: u8,
    /// IER.
    pub interrupt_enable: u8,
    /// IIR.
    pub interrupt_identification: u8,
    /// LCR.
    pub line_control: u8,
    /// LSR.
    pub line_status: u8,
    /// MCR.
    pub modem_control: u8,
    /// MSR.
    pub modem_status: u8,
    /// Scratch register.
    pub scratch: u8,
    /// Bytes received and not yet read by the guest.
    pub in_buffer: Vec<u8>,
}

/// The 16550's receive FIFO size.
const FIFO_SIZE: usize = 64;

impl SerialState {
    /// Refuses a receive FIFO longer than the UART's.
    pub fn validate(&self) -> Result<(), crate::snapshot::state::InvalidState> {
        if self.in_buffer.len() > FIFO_SIZE {
            return Err(crate::snapshot::state::InvalidState(format!(
                "serial: {} bytes in a {FIFO_SIZE}-byte receive FIFO",
                self.in_buffer.len()
            )));
        }
        Ok(())
    }
}

impl crate::snapshot::Persist for SerialDevice {
    type State = SerialState;
    /// The interrupt eventfd and the console sink of the new process.
    type ConstructorArgs = (EventFd, Box<dyn Write + Send>);
    type Error = SerialError;

    fn save(&self) -> SerialState {
        let s = self.uart.state();
        SerialState {
            baud_divisor_low: s.baud_divisor_low,
            baud_divisor_high: s.baud_divisor_high,
            interrupt_enable: s.interrupt_enable,
            interrupt_identification: s.interrupt_identification,
            line_control: s.line_control,
            line_status: s.line_status,
            modem_control: s.modem_control,
            modem_status: s.modem_status,
            scratch: s.scratch,
            in_buffer: s.in_buffer,
        }
    }

    fn restore(
        (irq, out): (EventFd, Box<dyn Write + Send>),
        s: &SerialState,
    ) -> Result<Self, SerialError> {
        let state = vm_superio::serial::SerialState {
            baud_divisor_low: s.baud_divisor_low,
            baud_divisor_high: s.baud_divisor_high,
            interrupt_enable: s.interrupt_enable,
            interrupt_identification: s.interrupt_identification,
            line_control: s.line_control,
            line_status: s.line_status,
            modem_control: s.modem_control,
            modem_status: s.modem_status,
            scratch: s.scratch,
            in_buffer: s.in_buffer.clone(),
        };
        // vm-superio refuses an over-long FIFO itself (FullFifo).
        let uart = Serial::from_state(&state, EventFdTrigger(irq), UartEvents, out)
            .map_err(SerialError::Restore)?;
        Ok(SerialDevice { uart })
    }
}

/// A thread copying host stdin into the UART until `stop` is set.
#[derive(Debug)]
pub struct StdinForwarder {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl StdinForwarder {
    /// Starts copying stdin into `serial`; the thread first installs the
    /// `seccomp` filter when one is given (and forwards nothing if it cannot).
    pub fn start(
        serial: Arc<Mutex<SerialDevice>>,
        seccomp: Option<ThreadKind>,
    ) -> Result<Self, SerialError> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("vessel-stdin".into())
            .spawn(move || {
                if seccomp.is_some_and(|kind| crate::seccomp::install(kind).is_err()) {
                    return;
                }
                forward_stdin(&serial, &flag)
            })
            .map_err(SerialError::InputThread)?;
        Ok(StdinForwarder {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for StdinForwarder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// How often the input thread looks at its stop flag.
const INPUT_POLL: Duration = Duration::from_millis(100);

fn forward_stdin(serial: &Mutex<SerialDevice>, stop: &AtomicBool) {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    // An unbuffered handle on fd 0: `io::Stdin` buffers, and buffered bytes
    // would be invisible to poll.
    let Ok(fd) = io::stdin().as_fd().try_clone_to_owned() else {
        return;
    };
    let mut input = File::from(fd);
    let timeout = PollTimeout::try_from(INPUT_POLL).unwrap_or(PollTimeout::NONE);
    let mut buf = [0u8; 64];
    while !stop.load(Ordering::SeqCst) {
        let ready = {
            let mut fds = [PollFd::new(input.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, timeout) {
                Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
                Ok(_) => fds[0].revents().unwrap_or(PollFlags::empty()),
                Err(_) => return,
            }
        };
        if !ready.intersects(PollFlags::POLLIN | PollFlags::POLLHUP) {
            return;
        }
        let n = match input.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let mut pending = &buf[..n];
        while !pending.is_empty() && !stop.load(Ordering::SeqCst) {
            let taken = lock(serial).enqueue_input(pending);
            pending = &pending[taken..];
            if taken == 0 {
                // The guest has not drained the FIFO yet.
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device() -> (SerialDevice, Arc<Mutex<Vec<u8>>>) {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let out = ConsoleOutput::Buffer(buf.clone()).open().expect("sink");
        let evt = EventFd::new(libc::EFD_NONBLOCK).expect("eventfd");
        (SerialDevice::new(evt, out), buf)
    }

    #[test]
    fn guest_output_reaches_the_sink() {
        let (mut dev, buf) = device();
        for b in b"hi\n" {
            dev.write(0, &[*b]);
        }
        assert_eq!(&*lock(&buf), b"hi\n");
    }

    #[test]
    fn host_input_reaches_the_guest_and_raises_the_interrupt() {
        let (mut dev, _) = device();
        // IER: enable the received-data interrupt.
        dev.write(1, &[0x01]);
        assert_eq!(dev.enqueue_input(b"ab"), 2);
        assert_eq!(dev.irq_evt().read().expect("interrupt raised"), 1);
        let mut data = [0u8; 1];
        dev.read(5, &mut data);
        assert_eq!(data[0] & 1, 1, "LSR data ready");
        dev.read(0, &mut data);
        assert_eq!(data[0], b'a');
    }

    #[test]
    fn state_round_trips_and_an_overlong_fifo_is_refused() {
        use crate::snapshot::Persist;
        let (mut dev, _) = device();
        dev.write(3, &[0x80]); // LCR: DLAB
        dev.write(0, &[0x0c]); // divisor 12 (9600 baud)
        dev.write(3, &[0x03]); // 8N1
        dev.write(7, &[0x5a]); // scratch
        dev.enqueue_input(b"xy");
        let state = dev.save();
        assert_eq!(state.baud_divisor_low, 0x0c);
        assert_eq!(state.line_control, 0x03);
        assert_eq!(state.in_buffer, b"xy");
        let buf = Arc::new(Mutex::new(Vec::new()));
        let out = ConsoleOutput::Buffer(buf.clone()).open().expect("sink");
        let evt = EventFd::new(libc::EFD_NONBLOCK).expect("eventfd");
        let mut back = SerialDevice::restore((evt, out), &state).expect("restore");
        assert_eq!(back.save(), state);
        let mut b = [0u8];
        back.read(7, &mut b);
        assert_eq!(b[0], 0x5a);
        back.read(0, &mut b);
        assert_eq!(b[0], b'x');
        back.write(0, b"!");
        assert_eq!(&*lock(&buf), b"!");

        let long = SerialState {
            in_buffer: vec![0; 65],
            ..state
        };
        assert!(long.validate().is_err());
        let out = ConsoleOutput::None.open().expect("sink");
        let evt = EventFd::new(libc::EFD_NONBLOCK).expect("eventfd");
        assert!(matches!(
            SerialDevice::restore((evt, out), &long),
            Err(SerialError::Restore(_))
        ));
    }

    #[test]
    fn file_sink_is_created() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("console.log");
        let mut out = ConsoleOutput::File(path.clone()).open().expect("open");
        out.write_all(b"x").expect("write");
        drop(out);
        assert_eq!(std::fs::read(&path).expect("read"), b"x");
        let missing = ConsoleOutput::File(dir.path().join("no/such/dir/log"));
        assert!(matches!(
            missing.open(),
            Err(SerialError::OpenOutput { .. })
        ));
    }
}
