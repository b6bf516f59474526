//! Bringing a VM back from a snapshot in a fresh VMM: both files are read
//! and checked before anything is built (a refused snapshot starts
//! nothing), guest memory is the memory file mapped privately, then the
//! VM, vCPUs and devices are built in their saved state and the vCPU
//! threads start, paused or running.

use std::path::Path;

use super::{file, memory, vcpu, vm, SnapshotError};
use crate::builder::{self, Notify};
use crate::config::VmConfig;
use crate::devices::virtio::attach::restore::restore_devices;
use crate::running::RunningVm;

/// Restores the snapshot at `state_path` / `mem_path`. From `config` only
/// the console, console input and seccomp settings are used: the machine
/// is the snapshot's. With `resume` the guest runs at once, otherwise the
/// VM stays paused until [`RunningVm::resume`].
pub fn restore(
    config: &VmConfig,
    state_path: &Path,
    mem_path: &Path,
    resume: bool,
    notify: Notify,
) -> Result<RunningVm, SnapshotError> {
    let state = file::read(state_path).map_err(|source| SnapshotError::StateFile {
        path: state_path.to_owned(),
        source,
    })?;
    let memory = memory::map(mem_path, &state.machine)?;
    let mut config = config.clone();
    config.vcpus = state.machine.vcpu_count;
    config.memory_mib = state.machine.memory_mib;

    let vm = builder::create_vm(memory, config.vcpus).map_err(SnapshotError::Build)?;
    let mut vcpus = Vec::with_capacity(state.vcpus.len());
    for (index, saved) in (0u8..).zip(&state.vcpus) {
        let v = vm
            .create_vcpu(index)
            .map_err(|e| SnapshotError::Build(builder::VmmError::Vm(e)))?;
        vcpu::restore(v.fd(), saved).map_err(|e| SnapshotError::RestoreVcpu(index, e))?;
        vcpus.push(v);
    }
    vm::restore(&vm, &state.vm).map_err(SnapshotError::RestoreVm)?;
    // Virtio first: a disk image that is missing or resized, a transport
    // state that does not fit guest memory, refuse the snapshot before
    // the console is opened.
    let virtio = restore_devices(
        &state.devices.mmio,
        &vm,
        config.seccomp,
        config.devices.kvm_eventfds,
    )
    .map_err(|e| SnapshotError::Build(builder::VmmError::Virtio(e)))?;
    let mut devices = builder::setup_devices(&config, &vm, notify.clone(), Some(&state.devices))
        .map_err(SnapshotError::Build)?;
    builder::add_virtio(&mut devices, virtio).map_err(SnapshotError::Build)?;
    builder::spawn_vcpus(vm, devices, vcpus, config.seccomp, notify, !resume)
        .map_err(SnapshotError::Build)
}
