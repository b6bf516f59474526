//! The VMM thread's decisions on device requests. Before boot a request
//! replaces the device configuration only when the whole new configuration
//! checks out and the host resource it names opens now (the disk image,
//! the tap); otherwise it is refused and nothing changes. Devices vessel
//! does not build yet are refused by name.

use serde_json::{json, Value};

use super::{chain, Controller, NOT_BEFORE_BOOT};
use crate::api::devices::DeviceRequest;
use crate::config::devices::{BalloonConfig, DevicesConfig};
use crate::devices::virtio::balloon::BalloonHandle;
use crate::devices::virtio::net::handle::{patched, Limits};
use crate::devices::virtio::{block, net, vsock};

/// Any balloon request without one.
const NO_BALLOON: &str = "No balloon device is configured (PUT /balloon before boot).";

impl Controller {
    /// Decides a device request.
    pub(super) fn decide_device(&mut self, req: DeviceRequest) -> Result<Option<Value>, String> {
        match req {
            DeviceRequest::PutDrive(id, drive) => {
                self.pre_boot()?;
                if id != drive.drive_id {
                    return Err(format!(
                        "The drive id in the path ({id:?}) does not match the body's drive_id ({:?}).",
                        drive.drive_id
                    ));
                }
                // The image must open now, as the build would open it.
                block::Disk::open(&drive).map_err(|e| chain(&e))?;
                self.update_devices(|d| d.upsert_drive(drive))
            }
            DeviceRequest::PutEntropy(entropy) => {
                self.pre_boot()?;
                self.update_devices(|d| d.entropy = Some(entropy))
            }
            DeviceRequest::PutNet(id, iface) => {
                self.pre_boot()?;
                if id != iface.iface_id {
                    return Err(format!(
                        "The interface id in the path ({id:?}) does not match the body's iface_id ({:?}).",
                        iface.iface_id
                    ));
                }
                iface
                    .check("network-interface")
                    .map_err(|e| e.to_string())?;
                // The tap must attach now, as the build would attach it.
                net::check_host(&iface).map_err(|e| chain(&e))?;
                self.update_devices(|d| d.upsert_net(iface))
            }
            DeviceRequest::PatchNet(id, update) => {
                if id != update.iface_id {
                    return Err(format!(
                        "The interface id in the path ({id:?}) does not match the body's iface_id ({:?}).",
                        update.iface_id
                    ));
                }
                let mut iface = self
                    .config
                    .devices
                    .net
                    .iter()
                    .find(|n| n.iface_id == id)
                    .cloned()
                    .ok_or_else(|| format!("No network interface has the id {id:?}."))?;
                iface.rx_rate_limiter = patched(iface.rx_rate_limiter, update.rx_rate_limiter);
                iface.tx_rate_limiter = patched(iface.tx_rate_limiter, update.tx_rate_limiter);
                let limits = Limits {
                    rx: iface.rx_rate_limiter,
                    tx: iface.tx_rate_limiter,
                };
                self.update_devices(|d| d.upsert_net(iface))?;
                // After boot the device takes them at once.
                if let Some(vm) = &mut self.vm {
                    vm.set_net_limits(&id, limits);
                }
                Ok(None)
            }
            DeviceRequest::PutVsock(v) => {
                self.pre_boot()?;
                v.check().map_err(|e| e.to_string())?;
                // The socket must bind now, as the build would bind it.
                vsock::check_host(&v).map_err(|e| chain(&e))?;
                self.update_devices(|d| d.vsock = Some(v))
            }
            DeviceRequest::PutBalloon(b) => {
                self.pre_boot()?;
                self.update_devices(|d| d.balloon = Some(b))
            }
            DeviceRequest::GetBalloon => Ok(Some(json!(self.balloon_config()?))),
            DeviceRequest::PatchBalloon(u) => {
                let updated = BalloonConfig {
                    amount_mib: u.amount_mib,
                    ..self.balloon_config()?
                };
                updated
                    .check(self.config.memory_mib)
                    .map_err(|e| e.to_string())?;
                if let Some(handle) = self.balloon_handle()? {
                    handle.set_target_mib(u.amount_mib);
                }
                self.config.devices.balloon = Some(updated);
                Ok(None)
            }
            DeviceRequest::GetBalloonStats => {
                self.balloon_config()?;
                let handle = self
                    .balloon_handle()?
                    .ok_or_else(|| NOT_BEFORE_BOOT.to_string())?;
                let stats = handle.statistics().map_err(|e| e.to_string())?;
                serde_json::to_value(stats)
                    .map(Some)
                    .map_err(|e| e.to_string())
            }
            DeviceRequest::PatchBalloonStats(u) => {
                let seconds = u.stats_polling_interval_s;
                let updated = BalloonConfig {
                    stats_polling_interval_s: seconds,
                    ..self.balloon_config()?
                };
                // Before boot this is PUT /balloon's change; after, the
                // device refuses to turn statistics on or off.
                if let Some(handle) = self.balloon_handle()? {
                    handle
                        .set_polling_interval_s(seconds)
                        .map_err(|e| e.to_string())?;
                }
                self.config.devices.balloon = Some(updated);
                Ok(None)
            }
        }
    }

    /// The balloon as configured (and patched since).
    fn balloon_config(&self) -> Result<BalloonConfig, String> {
        self.config
            .devices
            .balloon
            .clone()
            .ok_or_else(|| NO_BALLOON.into())
    }

    /// The running balloon; `None` before boot.
    fn balloon_handle(&self) -> Result<Option<&BalloonHandle>, String> {
        match &self.vm {
            None => Ok(None),
            Some(vm) => vm.balloon().map(Some).ok_or_else(|| NO_BALLOON.into()),
        }
    }

    /// Applies `f` to a copy of the devices and keeps it if it checks out.
    fn update_devices(
        &mut self,
        f: impl FnOnce(&mut DevicesConfig),
    ) -> Result<Option<Value>, String> {
        let mut devices = self.config.devices.clone();
        f(&mut devices);
        devices
            .check(self.config.memory_mib)
            .map_err(|e| e.to_string())?;
        self.config.devices = devices;
        Ok(None)
    }

    /// The device sections of `GET /vm/config`.
    pub(super) fn devices_json(&self) -> Value {
        let d = &self.config.devices;
        json!({
            "drives": d.drives,
            "network-interfaces": d.net,
            "vsock": d.vsock,
            "entropy": d.entropy,
            "balloon": d.balloon,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::http::{Method, Request, Response};
    use crate::api::route;
    use crate::config::VmConfig;
    use crate::controller::ControllerOptions;
    use crate::logger::Log;

    fn call(c: &mut Controller, method: Method, path: &str, body: &str) -> (u16, Value) {
        let req = Request {
            method,
            path: path.into(),
            body: body.as_bytes().to_vec(),
            keep_alive: true,
        };
        let response = match route(&req) {
            Ok(api) => c.handle(api),
            Err(fault) => Response::fault(400, &fault),
        };
        let body = response
            .body
            .as_deref()
            .map_or(Value::Null, |b| serde_json::from_slice(b).expect("JSON"));
        (response.status, body)
    }

    fn controller() -> Controller {
        let options = ControllerOptions {
            id: "vm".into(),
            seccomp: false,
            api_socket: None,
            async_teardown: false,
        };
        Controller::new(VmConfig::new(""), false, Log::default(), options)
    }

    fn drive(id: &str, path: &std::path::Path, root: bool) -> String {
        json!({"drive_id": id, "path_on_host": path, "is_root_device": root}).to_string()
    }

    #[test]
    fn drives_are_checked_before_they_are_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let image = dir.path().join("disk.img");
        std::fs::write(&image, [0u8; 4096]).expect("image");
        let mut c = controller();
        let missing = dir.path().join("missing.img");
        let (status, body) = call(
            &mut c,
            Method::Put,
            "/drives/data",
            &drive("data", &missing, false),
        );
        assert_eq!(status, 400);
        let fault = body["fault_message"].as_str().unwrap_or_default();
        assert!(
            fault.contains("missing.img") && fault.contains("\"data\""),
            "{fault}"
        );
        let (status, body) = call(
            &mut c,
            Method::Put,
            "/drives/other",
            &drive("data", &image, false),
        );
        assert_eq!(status, 400);
        assert!(
            body["fault_message"].to_string().contains("does not match"),
            "{body}"
        );
        assert!(c.config.devices.drives.is_empty(), "nothing kept");

        assert_eq!(
            call(
                &mut c,
                Method::Put,
                "/drives/data",
                &drive("data", &image, false)
            )
            .0,
            204
        );
        assert_eq!(
            call(
                &mut c,
                Method::Put,
                "/drives/rootfs",
                &drive("rootfs", &image, true)
            )
            .0,
            204
        );
        // A second root device is refused and the first stays.
        let (status, _) = call(
            &mut c,
            Method::Put,
            "/drives/root2",
            &drive("root2", &image, true),
        );
        assert_eq!(status, 400);
        assert_eq!(call(&mut c, Method::Put, "/entropy", "{}").0, 204);
        let boot = json!({ "kernel_image_path": image }).to_string();
        assert_eq!(call(&mut c, Method::Put, "/boot-source", &boot).0, 204);
        let (_, config) = call(&mut c, Method::Get, "/vm/config", "");
        assert_eq!(config["drives"][0]["drive_id"], "rootfs");
        assert_eq!(config["drives"][1]["drive_id"], "data");
        assert_eq!(config["entropy"], json!({}));
        // What GET /vm/config returns parses back as a config file.
        let file = crate::config::file::parse(config.to_string().as_bytes()).expect("parses");
        assert_eq!(file.devices().drives.len(), 2);
    }

    #[test]
    fn vsock_is_accepted_before_boot_and_bad_values_are_refused() {
        let mut c = controller();
        let dir = tempfile::tempdir().expect("tempdir");
        let sock = dir.path().join("v.sock");
        let body = |cid: u32, path: &std::path::Path| {
            json!({ "guest_cid": cid, "uds_path": path }).to_string()
        };
        let (status, err) = call(&mut c, Method::Put, "/vsock", &body(2, &sock));
        assert_eq!(status, 400);
        assert!(err.to_string().contains("guest_cid"), "{err}");
        std::fs::write(dir.path().join("taken"), b"").expect("file");
        let (status, err) = call(
            &mut c,
            Method::Put,
            "/vsock",
            &body(3, &dir.path().join("taken")),
        );
        assert_eq!(status, 400);
        assert!(err.to_string().contains("already exists"), "{err}");
        let (status, err) = call(
            &mut c,
            Method::Put,
            "/vsock",
            &body(3, &dir.path().join("no/dir/v.sock")),
        );
        assert_eq!(status, 400);
        assert!(err.to_string().contains("Cannot listen"), "{err}");
        let (_, config) = call(&mut c, Method::Get, "/vm/config", "");
        assert_eq!(config["vsock"], Value::Null);
        assert_eq!(call(&mut c, Method::Put, "/vsock", &body(7, &sock)).0, 204);
        assert!(!sock.exists(), "the check leaves no socket behind");
        let (_, config) = call(&mut c, Method::Get, "/vm/config", "");
        assert_eq!(config["vsock"]["guest_cid"], 7);
    }

    #[test]
    fn the_balloon_is_configured_patched_and_checked_before_boot() {
        let mut c = controller();
        for (m, p, body) in [
            (Method::Get, "/balloon", ""),
            (Method::Patch, "/balloon", r#"{"amount_mib": 1}"#),
            (Method::Get, "/balloon/statistics", ""),
            (
                Method::Patch,
                "/balloon/statistics",
                r#"{"stats_polling_interval_s": 1}"#,
            ),
        ] {
            let (status, body) = call(&mut c, m, p, body);
            assert_eq!(status, 400, "{p}");
            assert!(
                body["fault_message"]
                    .to_string()
                    .contains("No balloon device is configured"),
                "{p}: {body}"
            );
        }
        // More than the guest's 128 MiB: refused by name, nothing kept.
        let (status, body) = call(
            &mut c,
            Method::Put,
            "/balloon",
            r#"{"amount_mib": 129, "deflate_on_oom": false}"#,
        );
        assert_eq!(status, 400);
        assert!(
            body["fault_message"]
                .to_string()
                .contains("balloon.amount_mib"),
            "{body}"
        );
        assert_eq!(call(&mut c, Method::Get, "/balloon", "").0, 400);
        let put = r#"{"amount_mib": 16, "deflate_on_oom": true, "stats_polling_interval_s": 2}"#;
        assert_eq!(call(&mut c, Method::Put, "/balloon", put).0, 204);
        let (status, b) = call(&mut c, Method::Patch, "/balloon", r#"{"amount_mib": 200}"#);
        assert_eq!(status, 400, "{b}");
        assert_eq!(
            call(&mut c, Method::Patch, "/balloon", r#"{"amount_mib": 8}"#).0,
            204
        );
        let patch = r#"{"stats_polling_interval_s": 0}"#;
        assert_eq!(
            call(&mut c, Method::Patch, "/balloon/statistics", patch).0,
            204
        );
        let (status, b) = call(&mut c, Method::Get, "/balloon", "");
        assert_eq!(status, 200);
        assert_eq!(
            b,
            json!({"amount_mib": 8, "deflate_on_oom": true, "stats_polling_interval_s": 0})
        );
        // Statistics exist only once the device runs.
        let (status, b) = call(&mut c, Method::Get, "/balloon/statistics", "");
        assert_eq!(status, 400);
        assert!(b.to_string().contains("before starting"), "{b}");
        let (_, config) = call(&mut c, Method::Get, "/vm/config", "");
        assert_eq!(config["balloon"]["amount_mib"], 8);
    }

    #[test]
    fn network_interfaces_need_a_tap_that_attaches_now() {
        let mut c = controller();
        for (path, body, want) in [
            (
                "/network-interfaces/eth0",
                r#"{"iface_id": "eth0", "host_dev_name": "vsslnotap7"}"#,
                "\"vsslnotap7\" does not exist",
            ),
            (
                "/network-interfaces/eth1",
                r#"{"iface_id": "eth0", "host_dev_name": "vsslnotap7"}"#,
                "does not match",
            ),
            (
                "/network-interfaces/eth0",
                r#"{"iface_id": "eth0", "host_dev_name": "vsslnotap7", "guest_mac": "01:00:00:00:00:01"}"#,
                "multicast",
            ),
            (
                "/network-interfaces/eth0",
                r#"{"iface_id": "eth0", "host_dev_name": "a/b"}"#,
                "host_dev_name",
            ),
        ] {
            let (status, body) = call(&mut c, Method::Put, path, body);
            assert_eq!(status, 400, "{path}");
            let fault = body["fault_message"].as_str().unwrap_or_default();
            assert!(fault.contains(want), "{path}: {fault}");
        }
        assert!(c.config.devices.net.is_empty(), "nothing kept");
    }

    #[test]
    fn patching_an_interface_replaces_the_buckets_named() {
        let mut c = controller();
        c.config
            .devices
            .net
            .push(crate::config::devices::NetConfig {
                iface_id: "eth0".into(),
                host_dev_name: "tap0".into(),
                guest_mac: None,
                rx_rate_limiter: None,
                tx_rate_limiter: None,
            });
        let patch =
            r#"{"iface_id": "eth0", "tx_rate_limiter": {"ops": {"size": 5, "refill_time": 100}}}"#;
        assert_eq!(
            call(&mut c, Method::Patch, "/network-interfaces/eth0", patch).0,
            204
        );
        let (_, config) = call(&mut c, Method::Get, "/vm/config", "");
        let iface = &config["network-interfaces"][0];
        assert_eq!(iface["tx_rate_limiter"]["ops"]["size"], 5);
        assert_eq!(iface["rx_rate_limiter"], Value::Null);
        for (path, body, want) in [
            (
                "/network-interfaces/eth1",
                patch.to_string(),
                "does not match",
            ),
            (
                "/network-interfaces/eth9",
                patch.replace("eth0", "eth9"),
                "No network interface has the id \"eth9\"",
            ),
        ] {
            let (status, body) = call(&mut c, Method::Patch, path, &body);
            assert_eq!(status, 400, "{path}");
            let fault = body["fault_message"].as_str().unwrap_or_default();
            assert!(fault.contains(want), "{fault}");
        }
    }
}
