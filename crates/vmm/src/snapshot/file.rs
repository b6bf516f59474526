//! The state file: a fixed header, then the [`MicrovmState`] encoded with
//! postcard (serde's compact binary format).
//!
//! ```text
//! offset  size  field
//!      0     8  magic "VSSLSNAP"
//!      8     4  format version, little endian (FORMAT_VERSION)
//!     12     4  flags, zero
//!     16     8  payload length in bytes, little endian
//!     24    32  SHA-256 of bytes 0..24 followed by the payload
//!     56     …  payload
//! ```
//!
//! Reading checks, in this order, with an error for each: the file's size
//! against [`MAX_STATE_LEN`] (before reading it), the magic, the version,
//! a complete header, zero flags, the declared length against what
//! follows, the checksum, the postcard decoding (no byte left over), and
//! [`MicrovmState::validate`].

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use super::state::{InvalidState, MicrovmState};

/// The first bytes of every vessel state file.
pub const MAGIC: [u8; 8] = *b"VSSLSNAP";
/// The format this vessel writes and reads. Bumped whenever the encoding
/// of [`MicrovmState`] changes; another version is refused, never guessed.
pub const FORMAT_VERSION: u32 = 4;
/// Bytes before the payload.
pub const HEADER_LEN: usize = 56;
/// The largest state file read (a 254-vCPU VM's state is about 2 MiB).
pub const MAX_STATE_LEN: u64 = 16 << 20;

/// Why a state file is refused.
#[derive(Debug, thiserror::Error)]
pub enum StateFileError {
    /// The file cannot be read.
    #[error("Cannot read the snapshot state file {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Larger than any state vessel writes.
    #[error("The state file is {len} bytes, more than the {max} a vessel state file can be")]
    TooLarge {
        /// Its size.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// Not a vessel state file.
    #[error("Not a vessel snapshot state file (no \"VSSLSNAP\" magic number)")]
    BadMagic,
    /// Written by a vessel with another format.
    #[error("The state file has format version {found}; this vessel reads version {FORMAT_VERSION} only")]
    Version {
        /// The file's version.
        found: u32,
    },
    /// The file ends early.
    #[error("The state file is truncated: {len} bytes, {needed} expected")]
    Truncated {
        /// Its size.
        len: usize,
        /// The size its header implies.
        needed: u64,
    },
    /// Flags this vessel does not know.
    #[error("The state file has unknown flags {0:#x}")]
    Flags(u32),
    /// More bytes than the header declares.
    #[error("The state file has {0} bytes after its declared end")]
    TrailingBytes(u64),
    /// The checksum does not match.
    #[error("The state file is corrupt: its SHA-256 checksum does not match")]
    Checksum,
    /// The payload does not decode.
    #[error("The state file's payload does not decode")]
    Decode(#[source] postcard::Error),
    /// The payload decodes with bytes left over.
    #[error("The state file's payload has {0} bytes left over after decoding")]
    PayloadTrailing(usize),
    /// The payload decodes but describes a VM vessel will not build.
    #[error("The state file describes an impossible microVM")]
    Invalid(#[source] InvalidState),
}

fn checksum(head: &[u8], payload: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(head);
    h.update(payload);
    h.finalize().into()
}

/// The whole state file for `state`.
pub fn encode(state: &MicrovmState) -> Result<Vec<u8>, postcard::Error> {
    Ok(seal(&postcard::to_stdvec(state)?))
}

/// A state file around an encoded `payload`: header and checksum.
pub fn seal(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    let sum = checksum(&out, payload);
    out.extend_from_slice(&sum);
    out.extend_from_slice(payload);
    out
}

fn le_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_le_bytes(a)
}

fn le_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

/// Parses a whole state file (untrusted bytes): header, checksum, payload,
/// validation.
pub fn decode(bytes: &[u8]) -> Result<MicrovmState, StateFileError> {
    let len = bytes.len();
    if len < MAGIC.len() || bytes[..MAGIC.len()] != MAGIC {
        // A short file that is a prefix of the magic is a truncated one.
        if len < MAGIC.len() && MAGIC.starts_with(bytes) {
            return Err(StateFileError::Truncated {
                len,
                needed: HEADER_LEN as u64,
            });
        }
        return Err(StateFileError::BadMagic);
    }
    if len < 12 {
        return Err(StateFileError::Truncated {
            len,
            needed: HEADER_LEN as u64,
        });
    }
    let version = le_u32(&bytes[8..]);
    if version != FORMAT_VERSION {
        return Err(StateFileError::Version { found: version });
    }
    if len < HEADER_LEN {
        return Err(StateFileError::Truncated {
            len,
            needed: HEADER_LEN as u64,
        });
    }
    let flags = le_u32(&bytes[12..]);
    if flags != 0 {
        return Err(StateFileError::Flags(flags));
    }
    let declared = le_u64(&bytes[16..]);
    let present = (len - HEADER_LEN) as u64;
    if declared > present {
        return Err(StateFileError::Truncated {
            len,
            needed: declared.saturating_add(HEADER_LEN as u64),
        });
    }
    if declared < present {
        return Err(StateFileError::TrailingBytes(present - declared));
    }
    let payload = &bytes[HEADER_LEN..];
    if checksum(&bytes[..24], payload) != bytes[24..HEADER_LEN] {
        return Err(StateFileError::Checksum);
    }
    let state: MicrovmState = decode_payload(payload)?;
    state.validate().map_err(StateFileError::Invalid)?;
    Ok(state)
}

/// Decodes a postcard payload, refusing bytes left over.
pub fn decode_payload<T: DeserializeOwned>(payload: &[u8]) -> Result<T, StateFileError> {
    let (value, rest) = postcard::take_from_bytes(payload).map_err(StateFileError::Decode)?;
    if !rest.is_empty() {
        return Err(StateFileError::PayloadTrailing(rest.len()));
    }
    Ok(value)
}

/// Reads and parses the state file at `path` (at most [`MAX_STATE_LEN`]
/// bytes are read, whatever the file's size).
pub fn read(path: &Path) -> Result<MicrovmState, StateFileError> {
    let err = |source| StateFileError::Read {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(err)?;
    let len = file.metadata().map_err(err)?.len();
    let max = MAX_STATE_LEN + HEADER_LEN as u64;
    if len > max {
        return Err(StateFileError::TooLarge { len, max });
    }
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    // `take`: the file may grow after the size check.
    file.take(max + 1).read_to_end(&mut bytes).map_err(err)?;
    if bytes.len() as u64 > max {
        return Err(StateFileError::TooLarge {
            len: bytes.len() as u64,
            max,
        });
    }
    decode(&bytes)
}

#[cfg(test)]
mod tests;
