//! The device endpoints of the API, with Firecracker's paths and bodies:
//! `PUT /drives/{id}`, `PUT|PATCH /network-interfaces/{id}`, `PUT /vsock`,
//! `PUT /entropy`, `PUT /balloon`, `GET|PATCH /balloon`,
//! `GET|PATCH /balloon/statistics`.

use serde::Deserialize;

use super::http::{Method, Request};
use super::request::body;
use crate::config::devices::{
    BalloonConfig, DriveConfig, EntropyConfig, NetConfig, RateLimiterConfig, VsockConfig,
};

/// A device request.
#[derive(Debug, Clone, PartialEq)]
pub enum DeviceRequest {
    /// `PUT /drives/{id}`: the id of the path and the drive.
    PutDrive(String, DriveConfig),
    /// `PUT /network-interfaces/{id}`.
    PutNet(String, NetConfig),
    /// `PATCH /network-interfaces/{id}`: new rate limiters.
    PatchNet(String, NetUpdate),
    /// `PUT /vsock`.
    PutVsock(VsockConfig),
    /// `PUT /entropy`.
    PutEntropy(EntropyConfig),
    /// `PUT /balloon`.
    PutBalloon(BalloonConfig),
    /// `GET /balloon`.
    GetBalloon,
    /// `PATCH /balloon`: a new target.
    PatchBalloon(BalloonUpdate),
    /// `GET /balloon/statistics`.
    GetBalloonStats,
    /// `PATCH /balloon/statistics`: a new polling interval.
    PatchBalloonStats(BalloonStatsUpdate),
}

/// `PATCH /network-interfaces/{id}` (Firecracker's
/// `PartialNetworkInterface`): a limiter or bucket left out stays as it is.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetUpdate {
    /// Must be the id of the path.
    pub iface_id: String,
    /// Frames to the guest.
    #[serde(default)]
    pub rx_rate_limiter: Option<RateLimiterConfig>,
    /// Frames from the guest.
    #[serde(default)]
    pub tx_rate_limiter: Option<RateLimiterConfig>,
}

/// `PATCH /balloon`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BalloonUpdate {
    /// New target in MiB.
    pub amount_mib: u32,
}

/// `PATCH /balloon/statistics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BalloonStatsUpdate {
    /// Seconds between statistics requests.
    pub stats_polling_interval_s: u16,
}

/// Routes a device endpoint; `None` when the path is not one.
pub fn route(req: &Request) -> Option<Result<DeviceRequest, String>> {
    let path = req.path.as_str();
    let id = |prefix: &str| {
        path.strip_prefix(prefix)
            .filter(|id| !id.is_empty() && !id.contains('/'))
            .map(str::to_owned)
    };
    Some(match (req.method, path) {
        (Method::Put, _) if id("/drives/").is_some() => {
            let id = id("/drives/").unwrap_or_default();
            body(req, "drive").map(|d| DeviceRequest::PutDrive(id, d))
        }
        (Method::Put, _) if id("/network-interfaces/").is_some() => {
            let id = id("/network-interfaces/").unwrap_or_default();
            body(req, "network-interface").map(|n| DeviceRequest::PutNet(id, n))
        }
        (Method::Patch, _) if id("/network-interfaces/").is_some() => {
            let id = id("/network-interfaces/").unwrap_or_default();
            body(req, "network-interface").map(|n| DeviceRequest::PatchNet(id, n))
        }
        (Method::Put, "/vsock") => body(req, "vsock").map(DeviceRequest::PutVsock),
        (Method::Put, "/entropy") => body(req, "entropy").map(DeviceRequest::PutEntropy),
        (Method::Put, "/balloon") => body(req, "balloon").map(DeviceRequest::PutBalloon),
        (Method::Get, "/balloon") => Ok(DeviceRequest::GetBalloon),
        (Method::Patch, "/balloon") => body(req, "balloon").map(DeviceRequest::PatchBalloon),
        (Method::Get, "/balloon/statistics") => Ok(DeviceRequest::GetBalloonStats),
        (Method::Patch, "/balloon/statistics") => {
            body(req, "balloon statistics").map(DeviceRequest::PatchBalloonStats)
        }
        _ => return None,
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
    fn device_routes() {
        let Some(Ok(DeviceRequest::PutDrive(id, d))) = route(&req(
            Method::Put,
            "/drives/rootfs",
            r#"{"drive_id": "rootfs", "path_on_host": "/r.img", "is_root_device": true}"#,
        )) else {
            panic!("not a drive");
        };
        assert_eq!((id.as_str(), d.is_root_device), ("rootfs", true));
        assert!(matches!(
            route(&req(
                Method::Put,
                "/network-interfaces/eth0",
                r#"{"iface_id": "eth0", "host_dev_name": "tap0"}"#
            )),
            Some(Ok(DeviceRequest::PutNet(..)))
        ));
        let Some(Ok(DeviceRequest::PatchNet(id, u))) = route(&req(
            Method::Patch,
            "/network-interfaces/eth0",
            r#"{"iface_id": "eth0", "tx_rate_limiter": {"ops": {"size": 10, "refill_time": 100}}}"#,
        )) else {
            panic!("not a network interface update");
        };
        assert_eq!(id, "eth0");
        assert_eq!(u.rx_rate_limiter, None);
        assert_eq!(
            u.tx_rate_limiter.and_then(|l| l.ops).map(|b| b.size),
            Some(10)
        );
        assert!(matches!(
            route(&req(
                Method::Put,
                "/vsock",
                r#"{"guest_cid": 3, "uds_path": "/v"}"#
            )),
            Some(Ok(DeviceRequest::PutVsock(_)))
        ));
        assert_eq!(
            route(&req(Method::Patch, "/balloon", r#"{"amount_mib": 4}"#)),
            Some(Ok(DeviceRequest::PatchBalloon(BalloonUpdate {
                amount_mib: 4
            })))
        );
        assert_eq!(
            route(&req(Method::Get, "/balloon/statistics", "")),
            Some(Ok(DeviceRequest::GetBalloonStats))
        );
        for (m, p) in [
            (Method::Put, "/drives/"),
            (Method::Put, "/drives/a/b"),
            (Method::Get, "/drives/a"),
            (Method::Get, "/vsock"),
        ] {
            assert_eq!(route(&req(m, p, "{}")), None, "{p}");
        }
    }

    #[test]
    fn bad_bodies_name_the_field() {
        for (m, p, body, want) in [
            (
                Method::Put,
                "/drives/a",
                r#"{"drive_id": "a", "is_root_device": "yes"}"#,
                "at `is_root_device`",
            ),
            (
                Method::Put,
                "/drives/a",
                r#"{"drive_id": "a", "is_root_device": false, "bogus": 1}"#,
                "unknown field `bogus`",
            ),
            (
                Method::Put,
                "/vsock",
                r#"{"guest_cid": -3, "uds_path": "/v"}"#,
                "at `guest_cid`",
            ),
            (
                Method::Patch,
                "/balloon",
                r#"{"amount_mib": 1, "deflate_on_oom": true}"#,
                "unknown field",
            ),
            (Method::Put, "/entropy", "", "needs a JSON body"),
            (
                Method::Patch,
                "/network-interfaces/eth0",
                r#"{"iface_id": "eth0", "guest_mac": "06:00:00:00:00:01"}"#,
                "unknown field `guest_mac`",
            ),
        ] {
            let Some(Err(e)) = route(&req(m, p, body)) else {
                panic!("{p} {body} accepted");
            };
            assert!(e.contains(want), "{p} {body}: {e}");
        }
    }
}
