//! PC legacy devices on the port-I/O bus: COM1, the i8042 reset line, the
//! CMOS real-time clock, and the ACPI sleep registers (power-off).

pub mod acpi_sleep;
pub mod cmos;
pub mod i8042;
pub mod serial;

pub use acpi_sleep::AcpiSleep;
pub use cmos::Cmos;
pub use i8042::I8042;
pub use serial::{ConsoleOutput, SerialDevice};
