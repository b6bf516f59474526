//! A tap device opened through `/dev/net/tun`, as Firecracker opens it:
//! `IFF_TAP | IFF_NO_PI | IFF_VNET_HDR`, so every read returns one frame
//! and every write sends one, each behind a virtio-net header of
//! [`VNET_HDR_LEN`] bytes (`TUNSETVNETHDRSZ`) that is the guest's own —
//! checksum and segmentation offloads pass through unchanged.
//!
//! vessel attaches to a tap that exists (`ip tuntap add NAME mode tap`),
//! in the network namespace of the thread that builds the VM. It does not
//! create a missing one: as root, `TUNSETIFF` would quietly make a new,
//! unconfigured tap that vanishes with the VMM, and the guest would talk
//! into nothing.

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;

use super::frame::VNET_HDR_LEN;

/// The clone device.
pub const TUN_PATH: &str = "/dev/net/tun";

/// Why a tap cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TapError {
    /// No interface of that name.
    #[error("The tap {0:?} does not exist in this network namespace (create it first: `ip tuntap add {0} mode tap`)")]
    Missing(String),
    /// `/dev/net/tun` cannot be opened.
    #[error("Cannot open {TUN_PATH} for the tap {0:?}")]
    OpenTun(String, #[source] std::io::Error),
    /// `TUNSETIFF` refused.
    #[error("Cannot attach to the tap {name:?}: {reason}")]
    Attach {
        /// Interface name.
        name: String,
        /// What the error number means here.
        reason: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// `TUNSETVNETHDRSZ` or `TUNSETOFFLOAD` refused.
    #[error("Cannot configure the tap {0:?} ({1})")]
    Configure(String, &'static str, #[source] std::io::Error),
}

/// An open tap: one frame (with its virtio-net header) per read or write.
#[derive(Debug)]
pub struct Tap {
    file: File,
    name: String,
}

fn check(ret: libc::c_int) -> std::io::Result<()> {
    if ret < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

impl Tap {
    /// Attaches to the existing tap `name` (non-blocking).
    pub fn open(name: &str) -> Result<Tap, TapError> {
        let missing = || TapError::Missing(name.to_owned());
        let cname = CString::new(name).map_err(|_| missing())?;
        if cname.as_bytes().len() >= libc::IFNAMSIZ {
            return Err(missing());
        }
        // SAFETY: if_nametoindex reads the NUL-terminated `cname` only.
        if unsafe { libc::if_nametoindex(cname.as_ptr()) } == 0 {
            return Err(missing());
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(TUN_PATH)
            .map_err(|e| TapError::OpenTun(name.to_owned(), e))?;
        // SAFETY: ifreq is plain data; all zeroes is a valid value.
        let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
        for (dst, &src) in ifr.ifr_name.iter_mut().zip(cname.as_bytes()) {
            *dst = src as libc::c_char;
        }
        ifr.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI | libc::IFF_VNET_HDR) as i16;
        // SAFETY: TUNSETIFF reads and writes the ifreq `ifr`, which lives
        // across the call; the fd is the tun clone device just opened.
        check(unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, &mut ifr) }).map_err(
            |source| TapError::Attach {
                name: name.to_owned(),
                reason: attach_reason(&source),
                source,
            },
        )?;
        let hdr_len = VNET_HDR_LEN as libc::c_int;
        // SAFETY: TUNSETVNETHDRSZ reads one int from `hdr_len`, which lives
        // across the call.
        check(unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETVNETHDRSZ, &hdr_len) })
            .map_err(|e| TapError::Configure(name.to_owned(), "virtio-net header size", e))?;
        let tap = Tap {
            file,
            name: name.to_owned(),
        };
        // A tap left with offloads on by an earlier user would hand over
        // segmented or partially checksummed frames the guest never agreed to.
        tap.set_offload(0)
            .map_err(|e| TapError::Configure(name.to_owned(), "offloads", e))?;
        Ok(tap)
    }

    /// A tap over any datagram descriptor (unit tests use a socket pair).
    pub fn from_file(file: File, name: &str) -> Tap {
        Tap {
            file,
            name: name.to_owned(),
        }
    }

    /// The interface name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `TUNSETOFFLOAD`: which offloads (`TUN_F_*`) the tap may use in
    /// frames it hands to vessel.
    pub fn set_offload(&self, flags: libc::c_uint) -> std::io::Result<()> {
        // SAFETY: TUNSETOFFLOAD takes its argument by value and touches no
        // memory of ours.
        check(unsafe {
            libc::ioctl(
                self.file.as_raw_fd(),
                libc::TUNSETOFFLOAD,
                libc::c_ulong::from(flags),
            )
        })
    }

    /// Reads one frame into `buf` (`WouldBlock` when none is waiting).
    pub fn read_frame(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        (&self.file).read(buf)
    }

    /// Sends one frame.
    pub fn write_frame(&self, buf: &[u8]) -> std::io::Result<usize> {
        (&self.file).write(buf)
    }
}

impl AsRawFd for Tap {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.file.as_raw_fd()
    }
}

/// What `TUNSETIFF`'s error means for a name that exists.
fn attach_reason(e: &std::io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::EINVAL) => "it is not a tap device (a tun device, or another kind of interface)",
        Some(libc::EBUSY) => "another process is attached to it",
        Some(libc::EPERM) => {
            "permission denied (it belongs to another user or group, or CAP_NET_ADMIN is needed)"
        }
        _ => "TUNSETIFF failed",
    }
}
