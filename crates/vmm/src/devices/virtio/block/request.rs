//! One virtio-blk request: a 16-byte header the device reads (type,
//! sector), data, and a status byte the device writes last. Parsing trusts
//! nothing: a header that is short, data that is not whole sectors or runs
//! past the disk, a write to a read-only disk, a discard list that is not
//! whole segments all end as `VIRTIO_BLK_S_IOERR` (or `UNSUPP` for unknown
//! types) in the status byte. A chain without a writable byte for the
//! status cannot be answered; it goes back with nothing written.

use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;

use nix::fcntl::{fallocate, FallocateFlags};
use virtio_bindings::virtio_blk::*;
use vm_memory::GuestMemoryMmap;

use super::Disk;
use crate::devices::virtio::queue::Chain;
use crate::metrics::METRICS;

/// Sector size of the virtio-blk protocol.
pub const SECTOR_SIZE: u64 = 512;
/// Size of the request header.
pub const HEADER_LEN: u64 = 16;
/// One discard/write-zeroes segment: sector u64, count u32, flags u32.
pub const SEGMENT_LEN: u64 = 16;
/// Most discard/write-zeroes segments in one request (`max_discard_seg`).
pub const MAX_DISCARD_SEGMENTS: u32 = 32;
/// Copy unit between the image and guest memory.
const CHUNK: usize = 64 << 10;

/// The request types vessel serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestType {
    /// Read sectors.
    In,
    /// Write sectors.
    Out,
    /// Flush the image to stable storage.
    Flush,
    /// The device's serial.
    GetId,
    /// Discard ranges (punch holes).
    Discard,
    /// Zero ranges.
    WriteZeroes,
    /// Anything else.
    Unsupported(u32),
}

impl RequestType {
    fn from_raw(t: u32) -> Self {
        match t {
            VIRTIO_BLK_T_IN => RequestType::In,
            VIRTIO_BLK_T_OUT => RequestType::Out,
            VIRTIO_BLK_T_FLUSH => RequestType::Flush,
            VIRTIO_BLK_T_GET_ID => RequestType::GetId,
            VIRTIO_BLK_T_DISCARD => RequestType::Discard,
            VIRTIO_BLK_T_WRITE_ZEROES => RequestType::WriteZeroes,
            other => RequestType::Unsupported(other),
        }
    }
}

/// A parsed request header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// What to do.
    pub kind: RequestType,
    /// First sector.
    pub sector: u64,
}

/// What a request does to the rate limiter: bytes moved and one operation.
pub fn cost(chain: &Chain, kind: RequestType) -> u64 {
    match kind {
        RequestType::In => chain.writable_len().saturating_sub(1),
        RequestType::Out => chain.readable_len().saturating_sub(HEADER_LEN),
        _ => 0,
    }
}

/// Reads the header, if the chain has one.
pub fn parse(chain: &Chain, mem: &GuestMemoryMmap) -> Option<Request> {
    let mut header = [0u8; HEADER_LEN as usize];
    if chain.read_at(mem, 0, &mut header) != header.len() {
        return None;
    }
    let (t, sector) = header.split_at(8);
    Some(Request {
        kind: RequestType::from_raw(u32::from_le_bytes(t[..4].try_into().ok()?)),
        sector: u64::from_le_bytes(sector.try_into().ok()?),
    })
}

/// Serves `chain` on `disk`; returns the bytes written to the guest
/// (data and status byte), 0 when there was no status byte to write.
pub fn handle(chain: &Chain, mem: &GuestMemoryMmap, disk: &Disk) -> u32 {
    let writable = chain.writable_len();
    if writable == 0 {
        return 0;
    }
    let status_at = writable - 1;
    let (status, data_written) = match parse(chain, mem) {
        Some(req) => execute(req, chain, mem, disk, status_at),
        None => {
            METRICS.block.invalid_reqs_count.inc();
            (VIRTIO_BLK_S_IOERR, 0)
        }
    };
    if status != VIRTIO_BLK_S_OK {
        METRICS.block.execute_fails.inc();
    }
    // The status byte is last; a guest that made it unwritable by other
    // means (it is in memory: parse checked) gets nothing more.
    let status = u8::try_from(status).unwrap_or(u8::MAX);
    chain.write_at(mem, status_at, &[status]);
    u32::try_from(data_written + 1).unwrap_or(u32::MAX)
}

fn execute(
    req: Request,
    chain: &Chain,
    mem: &GuestMemoryMmap,
    disk: &Disk,
    data_in_len: u64,
) -> (u32, u64) {
    let data_out_len = chain.readable_len().saturating_sub(HEADER_LEN);
    let writes = matches!(
        req.kind,
        RequestType::Out | RequestType::Discard | RequestType::WriteZeroes
    );
    if writes && disk.read_only {
        return (VIRTIO_BLK_S_IOERR, 0);
    }
    let result = match req.kind {
        RequestType::In => {
            return match check_range(disk, req.sector, data_in_len) {
                Some(offset) => match read(chain, mem, disk, offset, data_in_len) {
                    Ok(()) => (VIRTIO_BLK_S_OK, data_in_len),
                    Err(_) => (VIRTIO_BLK_S_IOERR, 0),
                },
                None => (VIRTIO_BLK_S_IOERR, 0),
            }
        }
        RequestType::Out => match check_range(disk, req.sector, data_out_len) {
            Some(offset) => write(chain, mem, disk, offset, data_out_len),
            None => return (VIRTIO_BLK_S_IOERR, 0),
        },
        RequestType::Flush => {
            METRICS.block.flush_count.inc();
            if disk.flush {
                disk.file.sync_data()
            } else {
                Ok(())
            }
        }
        RequestType::GetId => {
            let n = usize::try_from(data_in_len.min(u64::from(VIRTIO_BLK_ID_BYTES))).unwrap_or(0);
            let written = chain.write_at(mem, 0, &disk.id[..n]);
            return (VIRTIO_BLK_S_OK, written as u64);
        }
        RequestType::Discard | RequestType::WriteZeroes => {
            match zero_ranges(chain, mem, disk, data_out_len, req.kind) {
                Some(r) => r,
                None => return (VIRTIO_BLK_S_IOERR, 0),
            }
        }
        RequestType::Unsupported(_) => return (VIRTIO_BLK_S_UNSUPP, 0),
    };
    match result {
        Ok(()) => (VIRTIO_BLK_S_OK, 0),
        Err(_) => (VIRTIO_BLK_S_IOERR, 0),
    }
}

/// The byte offset of `len` bytes at `sector`, when they are whole sectors
/// inside the disk.
fn check_range(disk: &Disk, sector: u64, len: u64) -> Option<u64> {
    if len % SECTOR_SIZE != 0 {
        return None;
    }
    let end = sector.checked_add(len / SECTOR_SIZE)?;
    (end <= disk.sectors).then(|| sector * SECTOR_SIZE)
}

fn read(
    chain: &Chain,
    mem: &GuestMemoryMmap,
    disk: &Disk,
    offset: u64,
    len: u64,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; CHUNK.min(usize::try_from(len).unwrap_or(CHUNK))];
    let mut done = 0u64;
    while done < len {
        let n = usize::try_from(len - done).unwrap_or(CHUNK).min(CHUNK);
        disk.file.read_exact_at(&mut buf[..n], offset + done)?;
        if chain.write_at(mem, done, &buf[..n]) != n {
            return Err(std::io::ErrorKind::InvalidInput.into());
        }
        done += n as u64;
    }
    METRICS.block.read(len);
    Ok(())
}

fn write(
    chain: &Chain,
    mem: &GuestMemoryMmap,
    disk: &Disk,
    offset: u64,
    len: u64,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; CHUNK.min(usize::try_from(len).unwrap_or(CHUNK))];
    let mut done = 0u64;
    while done < len {
        let n = usize::try_from(len - done).unwrap_or(CHUNK).min(CHUNK);
        if chain.read_at(mem, HEADER_LEN + done, &mut buf[..n]) != n {
            return Err(std::io::ErrorKind::InvalidInput.into());
        }
        disk.file.write_all_at(&buf[..n], offset + done)?;
        done += n as u64;
    }
    METRICS.block.write(len);
    Ok(())
}

/// Discard (punch a hole) or write zeroes over each segment; `None` when
/// the segment list is malformed.
fn zero_ranges(
    chain: &Chain,
    mem: &GuestMemoryMmap,
    disk: &Disk,
    len: u64,
    kind: RequestType,
) -> Option<std::io::Result<()>> {
    if len == 0 || len % SEGMENT_LEN != 0 || len / SEGMENT_LEN > u64::from(MAX_DISCARD_SEGMENTS) {
        return None;
    }
    let mut ranges = Vec::new();
    for i in 0..len / SEGMENT_LEN {
        let mut seg = [0u8; SEGMENT_LEN as usize];
        if chain.read_at(mem, HEADER_LEN + i * SEGMENT_LEN, &mut seg) != seg.len() {
            return None;
        }
        let sector = u64::from_le_bytes(seg[..8].try_into().ok()?);
        let count = u32::from_le_bytes(seg[8..12].try_into().ok()?);
        let flags = u32::from_le_bytes(seg[12..].try_into().ok()?);
        // Only the "unmap" flag (bit 0) is defined, for write-zeroes.
        if flags & !1 != 0 || (kind == RequestType::Discard && flags != 0) {
            return None;
        }
        let bytes = u64::from(count) * SECTOR_SIZE;
        let offset = check_range(disk, sector, bytes)?;
        ranges.push((offset, bytes));
    }
    let mode = FallocateFlags::FALLOC_FL_PUNCH_HOLE | FallocateFlags::FALLOC_FL_KEEP_SIZE;
    for (offset, bytes) in ranges {
        let (Ok(off), Ok(n)) = (i64::try_from(offset), i64::try_from(bytes)) else {
            return None;
        };
        if n == 0 {
            continue;
        }
        // A punched hole reads as zeroes: both requests end the same way.
        // Filesystems without hole punching get zeroes written.
        let done = match fallocate(disk.file.as_raw_fd(), mode, off, n) {
            Ok(()) => Ok(()),
            Err(_) => write_zeroes(disk, offset, bytes),
        };
        if let Err(e) = done {
            return Some(Err(e));
        }
    }
    Some(Ok(()))
}

fn write_zeroes(disk: &Disk, offset: u64, len: u64) -> std::io::Result<()> {
    let zeroes = vec![0u8; CHUNK];
    let mut done = 0u64;
    while done < len {
        let n = usize::try_from(len - done).unwrap_or(CHUNK).min(CHUNK);
        disk.file.write_all_at(&zeroes[..n], offset + done)?;
        done += n as u64;
    }
    Ok(())
}
