//! CMOS RAM and real-time clock (ports 0x70/0x71): the wall-clock time in
//! BCD from the host's clock, the status registers Linux checks, and the
//! memory-size bytes firmware-less guests may read.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::devices::bus::BusDevice;

/// Port base (index port 0x70, data port 0x71).
pub const CMOS_BASE: u64 = 0x70;
/// Ports decoded.
pub const CMOS_LEN: u64 = 2;

const REG_SECONDS: u8 = 0x00;
const REG_MINUTES: u8 = 0x02;
const REG_HOURS: u8 = 0x04;
const REG_WEEKDAY: u8 = 0x06;
const REG_DAY: u8 = 0x07;
const REG_MONTH: u8 = 0x08;
const REG_YEAR: u8 = 0x09;
const REG_STATUS_A: u8 = 0x0a;
const REG_STATUS_B: u8 = 0x0b;
const REG_STATUS_C: u8 = 0x0c;
const REG_STATUS_D: u8 = 0x0d;
const REG_CENTURY: u8 = 0x32;
const STATUS_A_DEFAULT: u8 = 0x26; // 32.768 kHz base, 1024 Hz rate, UIP clear
const STATUS_B_24H: u8 = 0x02; // 24-hour mode, BCD
const STATUS_D_VALID: u8 = 0x80; // battery good

/// The CMOS device.
#[derive(Debug)]
pub struct Cmos {
    index: u8,
    data: [u8; 128],
}

fn bcd(v: u64) -> u8 {
    let v = u8::try_from(v % 100).unwrap_or(0);
    ((v / 10) << 4) | (v % 10)
}

/// (year, month, day) of a count of days since 1970-01-01 (proleptic
/// Gregorian; Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u64, u64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        u64::try_from(month).unwrap_or(1),
        u64::try_from(day).unwrap_or(1),
    )
}

impl Cmos {
    /// A CMOS announcing `mem_below_4g` and `mem_above_4g` bytes of RAM.
    pub fn new(mem_below_4g: u64, mem_above_4g: u64) -> Self {
        let mut data = [0u8; 128];
        data[usize::from(REG_STATUS_A)] = STATUS_A_DEFAULT;
        data[usize::from(REG_STATUS_B)] = STATUS_B_24H;
        data[usize::from(REG_STATUS_D)] = STATUS_D_VALID;
        // 0x34/0x35: RAM above 16 MiB in 64 KiB units.
        let above_16m = (mem_below_4g.saturating_sub(16 << 20) >> 16).min(0xffff);
        let [lo, hi, ..] = above_16m.to_le_bytes();
        data[0x34] = lo;
        data[0x35] = hi;
        // 0x5b..0x5d: RAM above 4 GiB in 64 KiB units.
        let [a, b, c, ..] = (mem_above_4g >> 16).to_le_bytes();
        data[0x5b] = a;
        data[0x5c] = b;
        data[0x5d] = c;
        Cmos { index: 0, data }
    }

    fn read_register(&self, reg: u8, now_secs: u64) -> u8 {
        let days = i64::try_from(now_secs / 86_400).unwrap_or(0);
        let secs = now_secs % 86_400;
        let (year, month, day) = civil_from_days(days);
        let year = u64::try_from(year).unwrap_or(1970);
        match reg {
            REG_SECONDS => bcd(secs % 60),
            REG_MINUTES => bcd(secs / 60 % 60),
            REG_HOURS => bcd(secs / 3600),
            // 1970-01-01 was a Thursday; the RTC counts Sunday as 1.
            REG_WEEKDAY => bcd(u64::try_from((days + 4).rem_euclid(7)).unwrap_or(0) + 1),
            REG_DAY => bcd(day),
            REG_MONTH => bcd(month),
            REG_YEAR => bcd(year % 100),
            REG_CENTURY => bcd(year / 100),
            REG_STATUS_C => 0,
            r => self.data[usize::from(r & 0x7f)],
        }
    }
}

impl BusDevice for Cmos {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        let value = match offset {
            0 => self.index,
            1 => {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                self.read_register(self.index, now)
            }
            _ => 0xff,
        };
        data.fill(value);
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        let Some(&value) = data.first() else {
            return;
        };
        match offset {
            // Bit 7 of the index port masks NMIs; it is not part of the index.
            0 => self.index = value & 0x7f,
            1 => match self.index {
                REG_STATUS_A | REG_STATUS_C | REG_STATUS_D => {}
                i => self.data[usize::from(i)] = value,
            },
            _ => {}
        }
    }
}

/// The CMOS in a snapshot: the index register and the 128 bytes of RAM
/// (the clock registers are read from the host's clock, not stored).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CmosState {
    /// The selected register.
    pub index: u8,
    /// CMOS RAM, 128 bytes.
    pub data: Vec<u8>,
}

impl CmosState {
    /// Refuses anything but 128 bytes of RAM and an index inside it.
    pub fn validate(&self) -> Result<(), crate::snapshot::state::InvalidState> {
        if self.data.len() != 128 || self.index > 0x7f {
            return Err(crate::snapshot::state::InvalidState(format!(
                "cmos: {} bytes of RAM (must be 128), index {:#x}",
                self.data.len(),
                self.index
            )));
        }
        Ok(())
    }
}

/// Why a CMOS state is refused.
#[derive(Debug, thiserror::Error)]
#[error("Cannot restore the CMOS: {0}")]
pub struct CmosRestoreError(#[source] crate::snapshot::state::InvalidState);

impl crate::snapshot::Persist for Cmos {
    type State = CmosState;
    type ConstructorArgs = ();
    type Error = CmosRestoreError;

    fn save(&self) -> CmosState {
        CmosState {
            index: self.index,
            data: self.data.to_vec(),
        }
    }

    fn restore((): (), state: &CmosState) -> Result<Self, CmosRestoreError> {
        state.validate().map_err(CmosRestoreError)?;
        let mut data = [0u8; 128];
        data.copy_from_slice(&state.data);
        Ok(Cmos {
            index: state.index,
            data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
    }

    #[test]
    fn time_registers_are_bcd() {
        let cmos = Cmos::new(64 << 20, 0);
        // 2024-01-01 13:45:07 UTC, a Monday.
        let t = 19_723 * 86_400 + 13 * 3600 + 45 * 60 + 7;
        assert_eq!(cmos.read_register(REG_SECONDS, t), 0x07);
        assert_eq!(cmos.read_register(REG_MINUTES, t), 0x45);
        assert_eq!(cmos.read_register(REG_HOURS, t), 0x13);
        assert_eq!(cmos.read_register(REG_DAY, t), 0x01);
        assert_eq!(cmos.read_register(REG_MONTH, t), 0x01);
        assert_eq!(cmos.read_register(REG_YEAR, t), 0x24);
        assert_eq!(cmos.read_register(REG_CENTURY, t), 0x20);
        assert_eq!(cmos.read_register(REG_WEEKDAY, t), 0x02);
        assert_eq!(cmos.read_register(REG_STATUS_D, t), STATUS_D_VALID);
    }

    #[test]
    fn state_round_trips_and_a_short_ram_is_refused() {
        use crate::snapshot::Persist;
        let mut cmos = Cmos::new(80 << 20, 0);
        cmos.write(0, &[0x40]);
        cmos.write(1, &[0x99]);
        let state = cmos.save();
        let mut back = Cmos::restore((), &state).expect("restore");
        let mut b = [0u8];
        back.read(1, &mut b);
        assert_eq!(b[0], 0x99);
        assert_eq!(back.save(), state);
        let short = CmosState {
            data: vec![0; 127],
            ..state
        };
        assert!(Cmos::restore((), &short).is_err());
    }

    #[test]
    fn index_port_selects_register_and_memory_size_is_announced() {
        let mut cmos = Cmos::new(80 << 20, 0);
        cmos.write(0, &[0x80 | 0x34]);
        let mut b = [0u8];
        cmos.read(1, &mut b);
        assert_eq!(b[0], 0x00); // (80-16) MiB = 1024 * 64 KiB = 0x0400
        cmos.write(0, &[0x35]);
        cmos.read(1, &mut b);
        assert_eq!(b[0], 0x04);
        cmos.write(0, &[0x40]);
        cmos.write(1, &[0x99]);
        cmos.read(1, &mut b);
        assert_eq!(b[0], 0x99);
    }
}
