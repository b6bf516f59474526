//! The devices of a running VM into a [`DevicesState`] (restoring them is
//! the builder's job: [`crate::builder::setup_devices`] takes the legacy
//! devices' state, [`crate::devices::virtio::attach::restore`] the virtio
//! devices').
//!
//! Pausing the vCPUs is not enough for the virtio devices: their threads
//! may be serving a request (writing a used ring in guest memory) or take
//! one from a host socket or a rate limiter's timer meanwhile. So every
//! device thread is paused between two events first ([`PausedDevices`]),
//! for as long as the snapshot is being written, memory file included.

use super::state::{DevicesState, VirtioDeviceState};
use super::{Persist, SnapshotError};
use crate::builder::Devices;
use crate::devices::bus::lock;

/// The virtio device threads of a VM, paused until this is dropped.
pub(crate) struct PausedDevices<'a> {
    devices: &'a Devices,
}

impl Drop for PausedDevices<'_> {
    fn drop(&mut self) {
        for d in &self.devices.virtio.devices {
            lock(&d.transport).resume_worker();
        }
    }
}

impl Devices {
    /// Pauses every virtio device thread (each finishes what it is doing).
    pub(crate) fn pause_virtio(&self) -> PausedDevices<'_> {
        for d in &self.virtio.devices {
            lock(&d.transport).pause_worker();
        }
        PausedDevices { devices: self }
    }

    /// Every device's state. The vCPUs and (`_paused`) the virtio device
    /// threads are paused: nothing changes meanwhile. Refused when a
    /// device is of a kind snapshots cannot save yet.
    pub(crate) fn save(&self, _paused: &PausedDevices<'_>) -> Result<DevicesState, SnapshotError> {
        let mmio = self
            .virtio
            .devices
            .iter()
            .map(|d| {
                let transport = lock(&d.transport);
                // A state read on the paused device thread is newer than
                // the one kept since the build.
                let reported = transport.reported_state();
                let device = reported.or_else(|| d.state.clone()).ok_or_else(|| {
                    SnapshotError::Unsupported(format!(
                        "the {} device cannot be saved in a snapshot yet",
                        d.name
                    ))
                })?;
                Ok(VirtioDeviceState {
                    id: d.name.clone(),
                    base: d.base,
                    len: crate::devices::virtio::mmio::MMIO_LEN,
                    irq: d.irq,
                    transport: transport.save(),
                    device,
                })
            })
            .collect::<Result<_, SnapshotError>>()?;
        Ok(DevicesState {
            serial: lock(&self.serial).save(),
            i8042: lock(&self.i8042).save(),
            cmos: lock(&self.cmos).save(),
            mmio,
        })
    }
}
