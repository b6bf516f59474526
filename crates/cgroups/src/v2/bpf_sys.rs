//! The few bpf(2) commands the device filter needs: load a program, attach it to a cgroup,
//! list the device programs attached there, and detach one.
//!
//! Each command takes its own part of the kernel's `union bpf_attr`. Every part is declared
//! here with exactly the kernel's field layout and no implicit padding, and is passed
//! inside [`Attr`], which adds zeroed bytes after it: the kernel reads only the size it
//! knows, requires everything after that to be zero, and may write back fields past the
//! ones this crate sets (`BPF_PROG_QUERY` writes `revision` on recent kernels), which then
//! land in those zeroed bytes rather than past the end of our memory.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::bpf_insn::Insn;

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_PROG_QUERY: libc::c_long = 16;

const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
/// Several programs may be attached to the cgroup; all of them must allow an access.
pub(crate) const BPF_F_ALLOW_MULTI: u32 = 1 << 1;
/// The most programs the kernel attaches to one cgroup for one attach type.
const MAX_PROGS: usize = 64;
/// Size of the verifier log asked for when a load fails.
const LOG_SIZE: usize = 64 * 1024;

/// One command's attributes followed by zeroes (see the module documentation).
#[repr(C)]
struct Attr<T> {
    fields: T,
    zeros: [u64; 32],
}

impl<T> Attr<T> {
    fn new(fields: T) -> Self {
        Self {
            fields,
            zeros: [0; 32],
        }
    }
}

/// `BPF_PROG_LOAD` part of `union bpf_attr`, up to `expected_attach_type`.
#[repr(C)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// `BPF_PROG_ATTACH` / `BPF_PROG_DETACH` part, up to `replace_bpf_fd` (plus padding).
#[repr(C)]
struct ProgAttach {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
    _pad: u32,
}

/// `BPF_PROG_QUERY` part, up to `prog_cnt` (plus padding).
#[repr(C)]
struct ProgQuery {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
}

/// `BPF_PROG_GET_FD_BY_ID` part.
#[repr(C)]
struct GetFdById {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
    _pad: u32,
}

/// Runs one bpf(2) command; the result is the non-negative return value.
fn bpf<T>(cmd: libc::c_long, attr: &mut Attr<T>) -> io::Result<libc::c_long> {
    let size = std::mem::size_of::<Attr<T>>();
    // SAFETY: `attr` is a live, exclusively borrowed `Attr<T>` of `size` bytes whose fields
    // are the layout the kernel expects for `cmd` (checked by the callers, which pick T per
    // command); every pointer stored in it (instructions, license, log buffer, id array)
    // refers to memory that outlives this call and is as large as the count given next to
    // it. The kernel writes at most into `attr` itself and into those buffers.
    let ret = unsafe { libc::syscall(libc::SYS_bpf, cmd, std::ptr::from_mut(attr), size) };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Takes ownership of a file descriptor the kernel just returned.
fn owned_fd(ret: libc::c_long) -> io::Result<OwnedFd> {
    let fd = i32::try_from(ret).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
    // SAFETY: `fd` was just returned by a successful bpf(2) command that creates a new file
    // descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn fd_u32(fd: &impl AsRawFd) -> u32 {
    // File descriptors of open files are never negative.
    u32::try_from(fd.as_raw_fd()).unwrap_or(u32::MAX)
}

/// A load the kernel refused, with the verifier's log when it gave one.
#[derive(Debug)]
pub(crate) struct LoadError {
    pub(crate) source: io::Error,
    pub(crate) log: String,
}

/// Loads `insns` as a `BPF_PROG_TYPE_CGROUP_DEVICE` program named `name` (at most 15 bytes,
/// letters, digits, `_` and `.`). When the kernel refuses it, loads it again with the
/// verifier log turned on so the error can say why.
pub(crate) fn load_device_program(
    insns: &[Insn],
    license: &CStr,
    name: &str,
) -> Result<OwnedFd, LoadError> {
    let mut prog_name = [0u8; 16];
    let len = name.len().min(15);
    prog_name[..len].copy_from_slice(&name.as_bytes()[..len]);
    let insn_cnt = u32::try_from(insns.len()).map_err(|_| LoadError {
        source: io::Error::from_raw_os_error(libc::E2BIG),
        log: String::new(),
    })?;
    let attr = |log: &mut [u8]| {
        Attr::new(ProgLoad {
            prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
            insn_cnt,
            insns: insns.as_ptr() as u64,
            license: license.as_ptr() as u64,
            log_level: u32::from(!log.is_empty()),
            log_size: u32::try_from(log.len()).unwrap_or(0),
            log_buf: if log.is_empty() {
                0
            } else {
                log.as_mut_ptr() as u64
            },
            kern_version: 0,
            prog_flags: 0,
            prog_name,
            prog_ifindex: 0,
            expected_attach_type: BPF_CGROUP_DEVICE,
        })
    };
    match bpf(BPF_PROG_LOAD, &mut attr(&mut [])) {
        Ok(fd) => owned_fd(fd).map_err(|source| LoadError {
            source,
            log: String::new(),
        }),
        Err(source) => {
            let mut log = vec![0u8; LOG_SIZE];
            // Only for the log: the first error is the one reported.
            let _ = bpf(BPF_PROG_LOAD, &mut attr(&mut log));
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            Err(LoadError {
                source,
                log: String::from_utf8_lossy(&log[..end]).trim().to_string(),
            })
        }
    }
}

/// Attaches a device program to the cgroup directory `cgroup`.
pub(crate) fn attach(cgroup: &OwnedFd, prog: &OwnedFd, flags: u32) -> io::Result<()> {
    let mut attr = Attr::new(ProgAttach {
        target_fd: fd_u32(cgroup),
        attach_bpf_fd: fd_u32(prog),
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: flags,
        replace_bpf_fd: 0,
        _pad: 0,
    });
    bpf(BPF_PROG_ATTACH, &mut attr).map(drop)
}

/// Detaches the device program `prog` from the cgroup directory `cgroup`.
pub(crate) fn detach(cgroup: &OwnedFd, prog: &OwnedFd) -> io::Result<()> {
    let mut attr = Attr::new(ProgAttach {
        target_fd: fd_u32(cgroup),
        attach_bpf_fd: fd_u32(prog),
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: 0,
        replace_bpf_fd: 0,
        _pad: 0,
    });
    bpf(BPF_PROG_DETACH, &mut attr).map(drop)
}

/// The ids of the device programs attached directly to `cgroup` (not inherited ones).
pub(crate) fn query(cgroup: &OwnedFd) -> io::Result<Vec<u32>> {
    let mut ids = [0u32; MAX_PROGS];
    let mut attr = Attr::new(ProgQuery {
        target_fd: fd_u32(cgroup),
        attach_type: BPF_CGROUP_DEVICE,
        query_flags: 0,
        attach_flags: 0,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: u32::try_from(MAX_PROGS).unwrap_or(0),
        _pad: 0,
    });
    bpf(BPF_PROG_QUERY, &mut attr)?;
    let count = usize::try_from(attr.fields.prog_cnt)
        .unwrap_or(MAX_PROGS)
        .min(MAX_PROGS);
    Ok(ids[..count].to_vec())
}

/// A file descriptor for the loaded program with id `id`.
pub(crate) fn prog_fd_by_id(id: u32) -> io::Result<OwnedFd> {
    let mut attr = Attr::new(GetFdById {
        prog_id: id,
        next_id: 0,
        open_flags: 0,
        _pad: 0,
    });
    owned_fd(bpf(BPF_PROG_GET_FD_BY_ID, &mut attr)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_have_the_kernel_layout() {
        // Offsets of the last fields used, from uapi/linux/bpf.h.
        assert_eq!(std::mem::offset_of!(ProgLoad, expected_attach_type), 68);
        assert_eq!(std::mem::size_of::<ProgLoad>(), 72);
        assert_eq!(std::mem::offset_of!(ProgAttach, replace_bpf_fd), 16);
        assert_eq!(std::mem::offset_of!(ProgQuery, prog_cnt), 24);
        assert_eq!(std::mem::offset_of!(GetFdById, open_flags), 8);
    }
}
