//! Snapshots: a paused microVM written to two files, and a new VMM process
//! brought back from them, as Firecracker does.
//!
//! - The **memory file** ([`memory`]) is guest RAM as is (sparse: zero
//!   pages are holes); a restore maps it `MAP_PRIVATE`, so nothing is
//!   copied and the file never changes.
//! - The **state file** ([`file`]) is a versioned, checksummed header and
//!   a postcard-encoded [`state::MicrovmState`]: every vCPU's KVM state
//!   ([`vcpu`]), the VM's irqchips, PIT and clock ([`vm`]), and each
//!   device's [`Persist`] state ([`devices`]).
//!
//! [`create::create`] writes both (the VM must be paused: its vCPU threads
//! are parked outside KVM_RUN with their pending I/O completed, and each
//! saves its own vCPU); [`load::restore`] reads and checks both before it
//! builds anything, then builds the VM from them. See docs/vmm.md.

pub mod create;
pub mod devices;
pub mod file;
pub mod limits;
pub mod load;
pub mod memory;
pub mod params;
pub mod persist;
pub mod raw;
pub mod state;
pub mod vcpu;
pub mod vm;

use std::path::PathBuf;
use std::sync::Arc;

pub use persist::Persist;

use crate::builder::VmmError;

/// What creating a snapshot needs to know about KVM, found once when the
/// VM is built: the threads that save run under seccomp filters that allow
/// no `/dev/kvm` query.
#[derive(Debug, Clone)]
pub struct SnapshotContext {
    /// For each vCPU.
    pub vcpu: Arc<vcpu::SaveContext>,
    /// For the VM.
    pub vm: vm::VmSaveContext,
}

impl SnapshotContext {
    /// Asks KVM about `vm`.
    pub fn probe(vm: &crate::vm::Vm) -> Result<Self, vcpu::VcpuStateError> {
        Ok(SnapshotContext {
            vcpu: Arc::new(vcpu::SaveContext::probe(vm)?),
            vm: vm::VmSaveContext::probe(vm),
        })
    }
}

/// Errors creating or restoring a snapshot.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// Snapshots are taken of paused VMs only.
    #[error("The microVM must be paused before a snapshot is created (PATCH /vm {{\"state\": \"Paused\"}})")]
    NotPaused,
    /// The two files would be one.
    #[error("The state file and the memory file are the same path: {}", .0.display())]
    SamePath(PathBuf),
    /// A vCPU's state cannot be read.
    #[error("Cannot save the state of vCPU {0}")]
    SaveVcpu(u8, #[source] vcpu::VcpuStateError),
    /// The VM-wide state cannot be read.
    #[error("Cannot save the VM's interrupt controllers, PIT and clock")]
    SaveVm(#[source] vm::VmStateError),
    /// Encoding the state (a bug).
    #[error("Cannot encode the snapshot state")]
    Encode(#[source] postcard::Error),
    /// Writing one of the files.
    #[error("Cannot write the snapshot {what} {}", path.display())]
    Write {
        /// "state file" or "memory file".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The memory file.
    #[error(transparent)]
    Memory(#[from] memory::MemoryFileError),
    /// The state file is refused.
    #[error("Invalid snapshot state file {}", path.display())]
    StateFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: file::StateFileError,
    },
    /// The snapshot needs something this vessel cannot restore.
    #[error("Cannot restore the snapshot: {0}")]
    Unsupported(String),
    /// Building the VM again failed.
    #[error("Cannot rebuild the microVM from the snapshot")]
    Build(#[source] VmmError),
    /// KVM refused a vCPU's saved state.
    #[error("Cannot restore the state of vCPU {0}")]
    RestoreVcpu(u8, #[source] vcpu::VcpuStateError),
    /// KVM refused the VM-wide saved state.
    #[error("Cannot restore the VM's interrupt controllers, PIT and clock")]
    RestoreVm(#[source] vm::VmStateError),
}
