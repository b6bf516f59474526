//! The VMM thread's decisions on device requests. Before boot a request
//! replaces the device configuration only when the whole new configuration
//! checks out and the host resource it names opens now (the disk image,
//! the tap); otherwise it is refused and nothing changes. Devices vessel
//! does not build yet are refused by name.

use serde_json::{json, Value};

use super::{chain, Controller};
use crate::api::devices::DeviceRequest;
use crate::config::devices::DevicesConfig;
use crate::devices::virtio::{block, vsock};

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
            DeviceRequest::PutNet(..) => Err(not_yet("network interfaces are")),
            DeviceRequest::PutVsock(v) => {
                self.pre_boot()?;
                v.check().map_err(|e| e.to_string())?;
                // The socket must bind now, as the build would bind it.
                vsock::check_host(&v).map_err(|e| chain(&e))?;
                self.update_devices(|d| d.vsock = Some(v))
            }
            DeviceRequest::PutBalloon(_)
            | DeviceRequest::GetBalloon
            | DeviceRequest::PatchBalloon(_)
            | DeviceRequest::GetBalloonStats
            | DeviceRequest::PatchBalloonStats(_) => Err(not_yet("the balloon device is")),
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

fn not_yet(what: &str) -> String {
    format!("{what} not supported by vessel yet.")
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
    fn devices_vessel_lacks_are_refused_by_name() {
        let mut c = controller();
        for (m, p, body) in [
            (
                Method::Put,
                "/network-interfaces/eth0",
                r#"{"iface_id": "eth0", "host_dev_name": "tap0"}"#,
            ),
            (
                Method::Put,
                "/balloon",
                r#"{"amount_mib": 1, "deflate_on_oom": false}"#,
            ),
            (Method::Get, "/balloon", ""),
        ] {
            let (status, body) = call(&mut c, m, p, body);
            assert_eq!(status, 400, "{p}");
            assert!(
                body["fault_message"]
                    .to_string()
                    .contains("not supported by vessel yet"),
                "{p}: {body}"
            );
        }
    }
}
