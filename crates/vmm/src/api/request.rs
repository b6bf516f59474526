//! From an HTTP request to a typed [`ApiRequest`]: method and path to an
//! endpoint, JSON body to Firecracker's types. Only translation happens
//! here; whether a request is allowed in the VM's state is the
//! controller's call.

use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::http::{Method, Request};
use crate::config::file::{
    BootSource, CpuTemplate, HugePages, LoggerConfig, MachineConfig, MetricsConfig,
};
use crate::snapshot::params::{CreateSnapshotParams, LoadSnapshotParams};

/// What a client asks of the VMM.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiRequest {
    /// `GET /`.
    GetInstanceInfo,
    /// `GET /version`.
    GetVersion,
    /// `GET /machine-config`.
    GetMachineConfig,
    /// `GET /vm/config`.
    GetVmConfig,
    /// `PUT /boot-source`.
    PutBootSource(BootSource),
    /// `PUT /machine-config`.
    PutMachineConfig(MachineConfig),
    /// `PATCH /machine-config`.
    PatchMachineConfig(MachineConfigUpdate),
    /// `PUT /logger`.
    PutLogger(LoggerConfig),
    /// `PUT /metrics`.
    PutMetrics(MetricsConfig),
    /// `PUT /actions`.
    Action(ActionType),
    /// `PATCH /vm`.
    SetVmState(VmState),
    /// A device endpoint ([`super::devices`]).
    Device(super::devices::DeviceRequest),
    /// `PUT /snapshot/create`.
    CreateSnapshot(CreateSnapshotParams),
    /// `PUT /snapshot/load`.
    LoadSnapshot(LoadSnapshotParams),
}

/// `PATCH /machine-config`: any subset of the fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MachineConfigUpdate {
    /// vCPUs.
    pub vcpu_count: Option<u64>,
    /// Memory in MiB.
    pub mem_size_mib: Option<u64>,
    /// SMT.
    pub smt: Option<bool>,
    /// CPU template.
    pub cpu_template: Option<CpuTemplate>,
    /// Dirty page tracking.
    pub track_dirty_pages: Option<bool>,
    /// Huge pages.
    pub huge_pages: Option<HugePages>,
}

/// `PUT /actions` body.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionBody {
    action_type: ActionType,
}

/// The synchronous actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum ActionType {
    /// Boot the configured microVM.
    InstanceStart,
    /// Press Ctrl+Alt+Del on the guest's i8042 keyboard.
    SendCtrlAltDel,
    /// Write the metrics now ([`crate::metrics`]).
    FlushMetrics,
}

/// `PATCH /vm` body.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct VmBody {
    state: VmState,
}

/// The states a client can ask the VM to be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum VmState {
    /// Stop the vCPUs.
    Paused,
    /// Run them again.
    Resumed,
}

/// Routes `req`; the error is the `fault_message` of a 400.
pub fn route(req: &Request) -> Result<ApiRequest, String> {
    let no_body = |what: ApiRequest| {
        if req.body.is_empty() {
            Ok(what)
        } else {
            Err(format!(
                "{} {} takes no request body.",
                req.method.as_str(),
                req.path
            ))
        }
    };
    match (req.method, req.path.as_str()) {
        (Method::Get, "/") => no_body(ApiRequest::GetInstanceInfo),
        (Method::Get, "/version") => no_body(ApiRequest::GetVersion),
        (Method::Get, "/machine-config") => no_body(ApiRequest::GetMachineConfig),
        (Method::Get, "/vm/config") => no_body(ApiRequest::GetVmConfig),
        (Method::Put, "/boot-source") => body(req, "boot-source").map(ApiRequest::PutBootSource),
        (Method::Put, "/machine-config") => {
            body(req, "machine-config").map(ApiRequest::PutMachineConfig)
        }
        (Method::Patch, "/machine-config") => {
            body(req, "machine-config").map(ApiRequest::PatchMachineConfig)
        }
        (Method::Put, "/logger") => body(req, "logger").map(ApiRequest::PutLogger),
        (Method::Put, "/metrics") => body(req, "metrics").map(ApiRequest::PutMetrics),
        (Method::Put, "/actions") => {
            body::<ActionBody>(req, "actions").map(|b| ApiRequest::Action(b.action_type))
        }
        // Firecracker documents PATCH; PUT is accepted too, as the issue
        // that specified vessel's API asks.
        (Method::Patch | Method::Put, "/vm") => {
            body::<VmBody>(req, "vm").map(|b| ApiRequest::SetVmState(b.state))
        }
        (Method::Put, "/snapshot/create") => {
            body(req, "snapshot/create").map(ApiRequest::CreateSnapshot)
        }
        (Method::Put, "/snapshot/load") => body(req, "snapshot/load").map(ApiRequest::LoadSnapshot),
        (method, path) => match super::devices::route(req) {
            Some(device) => device.map(ApiRequest::Device),
            None => Err(format!(
                "Invalid request method and/or path: {} {path}.",
                method.as_str()
            )),
        },
    }
}

/// Parses the JSON body; the error names the field and what is wrong.
pub(super) fn body<T: DeserializeOwned>(req: &Request, what: &str) -> Result<T, String> {
    if req.body.is_empty() {
        return Err(format!("The {what} request needs a JSON body."));
    }
    let de = &mut serde_json::Deserializer::from_slice(&req.body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            format!("Invalid {what} request body: {inner}")
        } else {
            format!("Invalid {what} request body at `{path}`: {inner}")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: Method, path: &str, body: &str) -> Request {
        Request {
            method,
            path: path.into(),
            body: body.as_bytes().to_vec(),
            keep_alive: true,
        }
    }

    #[test]
    fn endpoints() {
        assert_eq!(
            route(&req(Method::Get, "/", "")),
            Ok(ApiRequest::GetInstanceInfo)
        );
        assert_eq!(
            route(&req(
                Method::Put,
                "/actions",
                r#"{"action_type": "InstanceStart"}"#
            )),
            Ok(ApiRequest::Action(ActionType::InstanceStart))
        );
        assert_eq!(
            route(&req(Method::Patch, "/vm", r#"{"state": "Paused"}"#)),
            Ok(ApiRequest::SetVmState(VmState::Paused))
        );
        assert_eq!(
            route(&req(Method::Put, "/vm", r#"{"state": "Resumed"}"#)),
            Ok(ApiRequest::SetVmState(VmState::Resumed))
        );
        let Ok(ApiRequest::CreateSnapshot(create)) = route(&req(
            Method::Put,
            "/snapshot/create",
            r#"{"snapshot_type": "Full", "snapshot_path": "/s", "mem_file_path": "/m"}"#,
        )) else {
            panic!("not a snapshot create");
        };
        assert_eq!(create.mem_file_path.to_str(), Some("/m"));
        let Ok(ApiRequest::LoadSnapshot(load)) = route(&req(
            Method::Put,
            "/snapshot/load",
            r#"{"snapshot_path": "/s", "mem_backend": {"backend_type": "File", "backend_path": "/m"}, "resume_vm": true}"#,
        )) else {
            panic!("not a snapshot load");
        };
        assert!(load.resume_vm);
        let Ok(ApiRequest::PatchMachineConfig(update)) = route(&req(
            Method::Patch,
            "/machine-config",
            r#"{"vcpu_count": 2}"#,
        )) else {
            panic!("not a machine-config patch");
        };
        assert_eq!(update.vcpu_count, Some(2));
        assert_eq!(update.mem_size_mib, None);
        let Ok(ApiRequest::PutBootSource(boot)) = route(&req(
            Method::Put,
            "/boot-source",
            r#"{"kernel_image_path": "/k", "boot_args": "console=ttyS0"}"#,
        )) else {
            panic!("not a boot source");
        };
        assert_eq!(boot.kernel_image_path.to_str(), Some("/k"));
        assert_eq!(
            route(&req(Method::Put, "/metrics", r#"{"metrics_path": "/m"}"#)),
            Ok(ApiRequest::PutMetrics(MetricsConfig {
                metrics_path: "/m".into()
            }))
        );
        assert_eq!(
            route(&req(
                Method::Put,
                "/actions",
                r#"{"action_type": "FlushMetrics"}"#
            )),
            Ok(ApiRequest::Action(ActionType::FlushMetrics))
        );
    }

    #[test]
    fn unknown_method_or_path() {
        for (m, p) in [
            (Method::Other, "/"),
            (Method::Get, "/nope"),
            (Method::Put, "/"),
            (Method::Get, "/vm"),
            (Method::Get, "/machine-config/"),
        ] {
            let err = route(&req(m, p, "")).unwrap_err();
            assert!(
                err.starts_with("Invalid request method and/or path"),
                "{err}"
            );
        }
    }

    #[test]
    fn wrong_types_unknown_fields_and_variants_name_the_field() {
        let cases = [
            (
                Method::Put,
                "/machine-config",
                r#"{"vcpu_count": "2", "mem_size_mib": 128}"#,
                "at `vcpu_count`: invalid type: string \"2\"",
            ),
            (
                Method::Put,
                "/machine-config",
                r#"{"vcpu_count": 2, "mem_size_mib": 128, "gpus": 1}"#,
                "unknown field `gpus`",
            ),
            (
                Method::Put,
                "/machine-config",
                r#"{"vcpu_count": 2}"#,
                "missing field `mem_size_mib`",
            ),
            (
                Method::Patch,
                "/vm",
                r#"{"state": "Sleeping"}"#,
                "at `state`: unknown variant `Sleeping`",
            ),
            (
                Method::Put,
                "/actions",
                r#"{"action_type": "Reboot"}"#,
                "unknown variant `Reboot`",
            ),
            (
                Method::Put,
                "/boot-source",
                r#"{"kernel_image_path": 5}"#,
                "at `kernel_image_path`: invalid type: integer",
            ),
            (Method::Put, "/logger", r#"{"level": "Loud"}"#, "at `level`"),
            (
                Method::Put,
                "/metrics",
                r#"{"metrics_path": 1}"#,
                "at `metrics_path`",
            ),
            (
                Method::Put,
                "/metrics",
                r#"{"path": "/m"}"#,
                "unknown field `path`",
            ),
            (Method::Put, "/metrics", "", "needs a JSON body"),
            (
                Method::Put,
                "/snapshot/create",
                r#"{"snapshot_path": "/s", "mem_file_path": "/m", "version": "1.0"}"#,
                "unknown field `version`",
            ),
            (
                Method::Put,
                "/snapshot/create",
                r#"{"snapshot_type": "Incremental", "snapshot_path": "/s", "mem_file_path": "/m"}"#,
                "at `snapshot_type`: unknown variant `Incremental`",
            ),
            (
                Method::Put,
                "/snapshot/load",
                r#"{"snapshot_path": "/s", "mem_backend": {"backend_type": "Disk", "backend_path": "/m"}}"#,
                "at `mem_backend.backend_type`: unknown variant `Disk`",
            ),
            (
                Method::Put,
                "/snapshot/load",
                r#"{"mem_file_path": "/m"}"#,
                "missing field `snapshot_path`",
            ),
            (Method::Put, "/boot-source", "{", "EOF while parsing"),
            (Method::Put, "/boot-source", "", "needs a JSON body"),
            (Method::Get, "/", "{}", "takes no request body"),
        ];
        for (m, p, body, want) in cases {
            let err = route(&req(m, p, body)).unwrap_err();
            assert!(err.contains(want), "{p} {body}: {err}");
        }
    }
}
