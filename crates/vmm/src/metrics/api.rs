//! The API's groups, with Firecracker's names: `api_server` (startup
//! times) and one count (and, for changes, one failure count) per
//! endpoint in `get_api_requests`, `put_api_requests` and
//! `patch_api_requests`. Requests Firecracker does not count (`GET
//! /vm/config`, `PATCH /vm`, snapshots, entropy, balloon) are not counted
//! here either.

use super::store::{metric_group, SharedIncMetric};
use super::METRICS;
use crate::api::devices::DeviceRequest;
use crate::api::ApiRequest;

metric_group! {
    /// `api_server`.
    pub struct ApiServerMetrics {
        /// Microseconds from the process's start to the VMM ready to serve.
        process_startup_time_us: SharedStoreMetric,
        /// CPU time the process used to get there, in microseconds.
        process_startup_time_cpu_us: SharedStoreMetric,
    }
}

metric_group! {
    /// `get_api_requests`.
    pub struct GetRequestsMetrics {
        /// `GET /`.
        instance_info_count: SharedIncMetric,
        /// `GET /machine-config`.
        machine_cfg_count: SharedIncMetric,
        /// `GET /version`.
        vmm_version_count: SharedIncMetric,
    }
}

metric_group! {
    /// `put_api_requests`.
    pub struct PutRequestsMetrics {
        /// `PUT /actions`.
        actions_count: SharedIncMetric,
        /// Refused actions.
        actions_fails: SharedIncMetric,
        /// `PUT /boot-source`.
        boot_source_count: SharedIncMetric,
        /// Refused boot sources.
        boot_source_fails: SharedIncMetric,
        /// `PUT /drives/{id}`.
        drive_count: SharedIncMetric,
        /// Refused drives.
        drive_fails: SharedIncMetric,
        /// `PUT /logger`.
        logger_count: SharedIncMetric,
        /// Refused loggers.
        logger_fails: SharedIncMetric,
        /// `PUT /machine-config`.
        machine_cfg_count: SharedIncMetric,
        /// Refused machine configs.
        machine_cfg_fails: SharedIncMetric,
        /// `PUT /metrics`.
        metrics_count: SharedIncMetric,
        /// Refused metrics configs.
        metrics_fails: SharedIncMetric,
        /// `PUT /network-interfaces/{id}`.
        network_count: SharedIncMetric,
        /// Refused network interfaces.
        network_fails: SharedIncMetric,
        /// `PUT /vsock`.
        vsock_count: SharedIncMetric,
        /// Refused vsock devices.
        vsock_fails: SharedIncMetric,
    }
}

metric_group! {
    /// `patch_api_requests`.
    pub struct PatchRequestsMetrics {
        /// `PATCH /machine-config`.
        machine_cfg_count: SharedIncMetric,
        /// Refused patches.
        machine_cfg_fails: SharedIncMetric,
    }
}

/// The counters of one request: counted when it arrives (so a
/// `FlushMetrics` counts itself), its failure counter when it is refused.
#[derive(Debug, Clone, Copy)]
pub struct RequestCounters {
    fails: Option<&'static SharedIncMetric>,
}

impl RequestCounters {
    /// Counts `req` and returns what [`RequestCounters::refused`] needs.
    pub fn arrived(req: &ApiRequest) -> Self {
        let (get, put, patch) = (
            &METRICS.get_api_requests,
            &METRICS.put_api_requests,
            &METRICS.patch_api_requests,
        );
        let (count, fails) = match req {
            ApiRequest::GetInstanceInfo => (Some(&get.instance_info_count), None),
            ApiRequest::GetVersion => (Some(&get.vmm_version_count), None),
            ApiRequest::GetMachineConfig => (Some(&get.machine_cfg_count), None),
            ApiRequest::PutBootSource(_) => {
                (Some(&put.boot_source_count), Some(&put.boot_source_fails))
            }
            ApiRequest::PutMachineConfig(_) => {
                (Some(&put.machine_cfg_count), Some(&put.machine_cfg_fails))
            }
            ApiRequest::PatchMachineConfig(_) => (
                Some(&patch.machine_cfg_count),
                Some(&patch.machine_cfg_fails),
            ),
            ApiRequest::PutLogger(_) => (Some(&put.logger_count), Some(&put.logger_fails)),
            ApiRequest::PutMetrics(_) => (Some(&put.metrics_count), Some(&put.metrics_fails)),
            ApiRequest::Action(_) => (Some(&put.actions_count), Some(&put.actions_fails)),
            ApiRequest::Device(DeviceRequest::PutDrive(..)) => {
                (Some(&put.drive_count), Some(&put.drive_fails))
            }
            ApiRequest::Device(DeviceRequest::PutNet(..)) => {
                (Some(&put.network_count), Some(&put.network_fails))
            }
            ApiRequest::Device(DeviceRequest::PutVsock(_)) => {
                (Some(&put.vsock_count), Some(&put.vsock_fails))
            }
            // Not counted by Firecracker either; a wildcard so that new
            // endpoints compile before they are given counters.
            _ => (None, None),
        };
        if let Some(c) = count {
            c.inc();
        }
        RequestCounters { fails }
    }

    /// Counts the request as refused.
    pub fn refused(self) {
        if let Some(f) = self.fails {
            f.inc();
        }
    }
}
