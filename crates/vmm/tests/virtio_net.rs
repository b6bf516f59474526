//! virtio-net end to end over a tap inside a network namespace of the
//! test's own: the C guest `virtio_net.c` (10.0.2.15, MAC from the config)
//! asks for the host's MAC by ARP and sends a UDP datagram the test
//! receives on 10.0.2.1:7777; the test sends one back, which the guest
//! prints and echoes. All traffic stays inside the namespace, which goes
//! away with the test's thread.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::sync::mpsc::{channel, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

use common::{build_c_guest, captured, require_kvm, text};
use nix::sched::{unshare, CloneFlags};
use vessel_testkit::{error_chain, require_root};
use vessel_vmm::config::devices::NetConfig;
use vessel_vmm::running::outcome;
use vessel_vmm::{run_vm, start_vm, VmExitReason};

const TAP: &str = "vtap0";
const GUEST_MAC: &str = "06:00:0a:00:02:0f";
/// Not a timed assertion: how long a broken device may take to show it
/// before the test stops the VM and fails instead of hanging.
const WATCHDOG: Duration = Duration::from_secs(300);

/// Moves this test's thread (and the commands and VM threads it starts)
/// into a new network namespace.
fn private_netns() {
    require_root("a network namespace for the tap");
    unshare(CloneFlags::CLONE_NEWNET)
        .expect("unshare(CLONE_NEWNET): the virtio-net tests need root (CAP_SYS_ADMIN)");
    ip(&["link", "set", "lo", "up"]);
}

fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("cannot run ip (iproute2)");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A tap at 10.0.2.1/24, up.
fn make_tap() {
    ip(&["tuntap", "add", "dev", TAP, "mode", "tap"]);
    ip(&["addr", "add", "10.0.2.1/24", "dev", TAP]);
    ip(&["link", "set", TAP, "up"]);
}

fn iface(host_dev_name: &str) -> NetConfig {
    NetConfig {
        iface_id: "eth0".into(),
        host_dev_name: host_dev_name.into(),
        guest_mac: Some(GUEST_MAC.into()),
        rx_rate_limiter: None,
        tx_rate_limiter: None,
    }
}

/// The host's side: what it received from the guest, and the echo.
fn host_peer(socket: UdpSocket) -> (Vec<u8>, SocketAddr, Vec<u8>) {
    socket.set_read_timeout(Some(WATCHDOG)).expect("timeout");
    let mut buf = [0u8; 512];
    let (n, from) = socket
        .recv_from(&mut buf)
        .expect("no datagram from the guest");
    let hello = buf[..n].to_vec();
    socket
        .send_to(b"ping from the host", from)
        .expect("send to the guest");
    let (n, _) = socket.recv_from(&mut buf).expect("no echo from the guest");
    (hello, from, buf[..n].to_vec())
}

#[test]
fn guest_and_host_exchange_frames_over_a_tap() {
    exchange(true);
}

#[test]
fn fallback_without_ioeventfd_and_irqfd_works_the_same() {
    // Notifications arrive as MMIO exits on the vCPU thread and the
    // interrupt is raised with KVM_IRQ_LINE.
    exchange(false);
}

fn exchange(kvm_eventfds: bool) {
    require_kvm();
    let dir = tempfile::tempdir().expect("tempdir");
    let kernel = build_c_guest("virtio_net", dir.path());
    private_netns();
    make_tap();
    let socket = UdpSocket::bind("10.0.2.1:7777").expect("bind in the namespace");
    let peer = std::thread::spawn(move || host_peer(socket));

    let (mut config, console) = captured(&kernel);
    config.devices.net.push(iface(TAP));
    config.devices.kvm_eventfds = kvm_eventfds;
    let (tx, events) = channel();
    let vm = start_vm(
        &config,
        Arc::new(move |e| {
            let _ = tx.send(e);
        }),
    )
    .expect("the VM starts");
    let reason = loop {
        match events.recv_timeout(WATCHDOG) {
            Ok(e) => {
                if let Some(r) = outcome(e) {
                    break r.expect("the guest runs");
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                vm.stop();
                panic!("the guest did not finish:\n{}", text(&console));
            }
            Err(RecvTimeoutError::Disconnected) => panic!("no VM events"),
        }
    };
    vm.stop();
    let out = text(&console);
    eprintln!("{out}");
    assert_eq!(reason, VmExitReason::Reset, "{out}");
    let (hello, from, echo) = peer.join().expect("host peer");
    assert_eq!(hello, b"hello from the guest");
    assert_eq!(from.to_string(), "10.0.2.15:7000");
    assert_eq!(echo, b"ping from the host");
    for line in [
        "virtio devices: 1\n",
        &format!("net: mac {GUEST_MAC} link up (VIRTIO_NET_F_MAC)\n"),
        "net: short chain used len 0\n",
        "net: outside chain used len 0\n",
        "net: arp request sent, used len 0\n",
        "net: arp reply from 10.0.2.1 is-at ",
        "net: udp sent, used len 0\n",
        "net: udp from host: ping from the host\n",
        "net: echo sent\n",
        "net: interrupts ok\n",
        "done\n",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    // The MAC the guest learned is the tap's (read in the namespace).
    let link = Command::new("ip")
        .args(["-br", "link", "show", TAP])
        .output()
        .expect("ip link");
    let link = String::from_utf8_lossy(&link.stdout).into_owned();
    let tap_mac = link.split_whitespace().nth(2).unwrap_or_default();
    let learned = out
        .split("is-at ")
        .nth(1)
        .and_then(|s| s.lines().next())
        .unwrap_or_default();
    assert_eq!(learned, tap_mac, "{link}");
}

#[test]
fn a_missing_or_wrong_tap_is_refused_by_name() {
    require_kvm();
    let dir = tempfile::tempdir().expect("tempdir");
    let kernel = build_c_guest("virtio_net", dir.path());
    private_netns();
    for (name, reason) in [
        ("vsslnotap0", "does not exist"),
        ("lo", "is not a tap device"),
    ] {
        let (mut config, console) = captured(&kernel);
        config.devices.net.push(iface(name));
        let err = error_chain(&run_vm(config).expect_err("no tap"));
        assert!(
            err.contains(&format!("{name:?}")) && err.contains(reason) && err.contains("\"eth0\""),
            "{err}"
        );
        assert!(text(&console).is_empty(), "the guest never ran");
    }
}
