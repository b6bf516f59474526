//! Writing a snapshot of a paused VM: the virtio device threads pause
//! between two events (see [`super::devices`]), each parked vCPU thread
//! saves its own vCPU, the VMM thread saves the VM and the devices, then
//! guest memory and
//! the state go to temporary files next to their targets, which are
//! renamed into place only once both are complete and synced: a failed or
//! interrupted snapshot leaves any earlier snapshot at those paths whole.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::channel;

use vm_memory::{GuestMemoryBackend, GuestMemoryRegion};

use super::state::{MachineState, MicrovmState, VcpuState};
use super::vcpu::VcpuStateError;
use super::{file, memory, vcpu, vm, SnapshotContext, SnapshotError};
use crate::builder::Devices;
use crate::vcpu::VcpuControl;
use crate::vm::Vm;

/// What a snapshot is taken of.
pub(crate) struct Source<'a> {
    pub vm: &'a Vm,
    pub devices: &'a Devices,
    pub control: &'a VcpuControl,
    pub vcpus: u8,
    pub context: &'a SnapshotContext,
}

fn save_vcpus(src: &Source<'_>) -> Result<Vec<VcpuState>, SnapshotError> {
    let (tx, rx) = channel();
    for index in 0..src.vcpus {
        let (tx, ctx) = (tx.clone(), src.context.vcpu.clone());
        src.control
            .run_on_parked(
                index,
                Box::new(move |v| {
                    let _ = tx.send((index, vcpu::save(v.fd(), &ctx)));
                }),
            )
            .map_err(|_| SnapshotError::SaveVcpu(index, VcpuStateError::Gone))?;
    }
    drop(tx);
    let mut states: Vec<Option<VcpuState>> = (0..src.vcpus).map(|_| None).collect();
    for _ in 0..src.vcpus {
        // Every job sends once or is dropped with its thread.
        let Ok((index, state)) = rx.recv() else {
            break;
        };
        let state = state.map_err(|e| SnapshotError::SaveVcpu(index, e))?;
        states[usize::from(index)] = Some(state);
    }
    states
        .into_iter()
        .zip(0u8..)
        .map(|(s, i)| s.ok_or(SnapshotError::SaveVcpu(i, VcpuStateError::Gone)))
        .collect()
}

/// A file being written next to `target`, removed unless committed.
struct TempFile {
    path: PathBuf,
    target: PathBuf,
    file: Option<File>,
    what: &'static str,
}

impl TempFile {
    fn create(target: &Path, what: &'static str) -> Result<Self, SnapshotError> {
        let name = target.file_name().unwrap_or_default().to_string_lossy();
        let path = target.with_file_name(format!(".{name}.vessel-tmp-{}", std::process::id()));
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(|source| SnapshotError::Write {
                what,
                path: target.to_owned(),
                source,
            })?;
        Ok(TempFile {
            path,
            target: target.to_owned(),
            file: Some(file),
            what,
        })
    }

    fn err(&self) -> impl FnOnce(std::io::Error) -> SnapshotError + '_ {
        move |source| SnapshotError::Write {
            what: self.what,
            path: self.target.clone(),
            source,
        }
    }

    fn file(&mut self) -> &mut File {
        self.file
            .as_mut()
            .unwrap_or_else(|| unreachable!("used after commit"))
    }

    fn sync(&mut self) -> Result<(), SnapshotError> {
        let r = self.file().sync_all();
        r.map_err(self.err())
    }

    fn commit(mut self) -> Result<(), SnapshotError> {
        self.file = None;
        let r = std::fs::rename(&self.path, &self.target);
        r.map_err(self.err())?;
        // Renamed: nothing left to remove.
        self.path = PathBuf::new();
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Snapshots the paused VM `src` into `state_path` and `mem_path`.
pub(crate) fn create(
    src: &Source<'_>,
    state_path: &Path,
    mem_path: &Path,
) -> Result<(), SnapshotError> {
    if state_path == mem_path {
        return Err(SnapshotError::SamePath(state_path.to_owned()));
    }
    // Resumed when dropped, after the memory file is written.
    let paused = src.devices.pause_virtio();
    let devices = src.devices.save(&paused)?;
    let vcpus = save_vcpus(src)?;
    let vm_state = vm::save(src.vm.fd(), src.context.vm).map_err(SnapshotError::SaveVm)?;
    let mem = src.vm.memory();
    let bytes: u64 = mem.iter().map(|r| r.len()).sum();
    let state = MicrovmState {
        machine: MachineState::new(src.vcpus, bytes >> 20),
        vm: vm_state,
        vcpus,
        devices,
    };
    let encoded = file::encode(&state).map_err(SnapshotError::Encode)?;

    let mut mem_file = TempFile::create(mem_path, "memory file")?;
    memory::write(mem, mem_file.file(), mem_path)?;
    mem_file.sync()?;
    let mut state_file = TempFile::create(state_path, "state file")?;
    let r = state_file.file().write_all(&encoded);
    r.map_err(state_file.err())?;
    state_file.sync()?;
    drop(paused);
    mem_file.commit()?;
    state_file.commit()
}
