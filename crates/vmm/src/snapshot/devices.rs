//! The devices of a running VM into a [`DevicesState`] (restoring them is
//! the builder's job: [`crate::builder::setup_devices`] takes the state).

use super::state::DevicesState;
use super::Persist;
use crate::builder::Devices;
use crate::devices::bus::lock;

impl Devices {
    /// Every device's state. The vCPUs are paused: no guest access races.
    pub(crate) fn save(&self) -> DevicesState {
        DevicesState {
            serial: lock(&self.serial).save(),
            i8042: lock(&self.i8042).save(),
            cmos: lock(&self.cmos).save(),
            mmio: Vec::new(),
        }
    }
}
