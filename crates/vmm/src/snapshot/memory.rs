//! The memory file: guest RAM, region after region, in the order of
//! [`super::state::MachineState::memory_regions`]. Pages that are all
//! zeros are left as holes (the file is sparse), so a snapshot of a guest
//! that touched little memory is small on disk. On restore the file is
//! mapped `MAP_PRIVATE`: nothing is copied, the guest's first write to a
//! page gives it a private copy, and the file never changes.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use vm_memory::mmap::MmapRegionBuilder;
use vm_memory::{
    Bytes, FileOffset, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion,
    GuestRegionMmap,
};

use super::state::MachineState;

/// Errors writing or mapping a memory file.
#[derive(Debug, thiserror::Error)]
pub enum MemoryFileError {
    /// A file operation failed.
    #[error("Cannot {what} the memory file {}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Reading guest memory failed (a bug: the ranges come from it).
    #[error("Cannot read guest memory at {0:#x}")]
    Guest(u64, #[source] vm_memory::GuestMemoryError),
    /// The file is not the size the state file says.
    #[error("The memory file {} is {actual} bytes, the snapshot's guest memory is {expected} bytes", path.display())]
    WrongSize {
        /// The file.
        path: PathBuf,
        /// Its size.
        actual: u64,
        /// Guest memory's size.
        expected: u64,
    },
    /// The mapping failed.
    #[error("Cannot map the memory file {}", path.display())]
    Map {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: vm_memory::mmap::MmapRegionError,
    },
    /// The regions do not form a guest memory (a bug: they were validated).
    #[error("The snapshot's memory regions are not a valid guest memory")]
    Regions(#[source] vm_memory::GuestRegionCollectionError),
}

const PAGE: usize = 4096;
/// How much guest memory is copied per write.
const CHUNK: usize = 1 << 20;

fn io<'a>(
    what: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> MemoryFileError + 'a {
    move |source| MemoryFileError::Io {
        what,
        path: path.to_owned(),
        source,
    }
}

/// Writes every region of `mem` into `file` (empty, seekable), skipping
/// zero pages; returns the bytes of guest memory.
pub fn write(mem: &GuestMemoryMmap, file: &mut File, path: &Path) -> Result<u64, MemoryFileError> {
    let mut buf = vec![0u8; CHUNK];
    let mut offset = 0u64;
    for region in mem.iter() {
        let start = region.start_addr().0;
        let len = region.len();
        let mut done = 0u64;
        while done < len {
            let n = usize::try_from((len - done).min(CHUNK as u64)).unwrap_or(CHUNK);
            let chunk = &mut buf[..n];
            mem.read_slice(chunk, GuestAddress(start + done))
                .map_err(|e| MemoryFileError::Guest(start + done, e))?;
            for (i, page) in chunk.chunks(PAGE).enumerate() {
                if page.iter().all(|&b| b == 0) {
                    continue;
                }
                file.seek(SeekFrom::Start(offset + done + (i * PAGE) as u64))
                    .map_err(io("seek in", path))?;
                file.write_all(page).map_err(io("write", path))?;
            }
            done += n as u64;
        }
        offset += len;
    }
    file.set_len(offset).map_err(io("size", path))?;
    Ok(offset)
}

/// Opens the memory file at `path`, checks its size against `machine`,
/// and maps it privately as guest memory.
pub fn map(path: &Path, machine: &MachineState) -> Result<GuestMemoryMmap, MemoryFileError> {
    let file = File::open(path).map_err(io("open", path))?;
    let actual = file.metadata().map_err(io("read the size of", path))?.len();
    let expected = machine.memory_bytes();
    if actual != expected {
        return Err(MemoryFileError::WrongSize {
            path: path.to_owned(),
            actual,
            expected,
        });
    }
    let file = Arc::new(file);
    let mut regions = Vec::with_capacity(machine.memory_regions.len());
    let mut offset = 0u64;
    for r in &machine.memory_regions {
        let map_err = |source| MemoryFileError::Map {
            path: path.to_owned(),
            source,
        };
        let size = usize::try_from(r.size).unwrap_or(usize::MAX);
        let mapping = MmapRegionBuilder::new(size)
            .with_mmap_prot(libc::PROT_READ | libc::PROT_WRITE)
            .with_mmap_flags(libc::MAP_PRIVATE | libc::MAP_NORESERVE)
            .with_file_offset(FileOffset::from_arc(file.clone(), offset))
            .build()
            .map_err(map_err)?;
        let region = GuestRegionMmap::new(mapping, GuestAddress(r.base)).ok_or(
            MemoryFileError::Regions(vm_memory::GuestRegionCollectionError::NoMemoryRegion),
        )?;
        regions.push(region);
        offset += r.size;
    }
    GuestMemoryMmap::from_regions(regions).map_err(MemoryFileError::Regions)
}
