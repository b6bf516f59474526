//! vessel-net against the real kernel (root): a bridge, a persistent
//! network namespace, a veth pair into it with an address and a default
//! route, TCP both ways between the namespace and the host over the
//! bridge, firewall rules owned and removed by comment, and nothing left
//! afterwards. Every address used is inside the namespace and bridge the
//! test itself makes.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::path::Path;

use nix::sched::{setns, CloneFlags};
use vessel_net::ipam::{self, Owner};
use vessel_net::netlink::Netlink;
use vessel_net::ports::{Protocol, PublishedPort};
use vessel_net::{bridge, endpoint, firewall, link, netns, Network, NetworkState};

fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test changes the host's network and needs root"
    );
}

fn test_network() -> Network {
    // Unique per process: tests of other crates use other ranges.
    let n = std::process::id() % 200;
    let subnet = format!("10.251.{n}.0/24").parse().unwrap();
    let mut net = Network::predefined();
    net.name = format!("plumbing-{}", std::process::id());
    net.bridge = format!("vstest{n}");
    net.subnet = subnet;
    net.gateway = Ipv4Addr::new(10, 251, n as u8, 1);
    net.internal = true;
    net
}

fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// Run `f` on a thread inside the namespace at `path`.
fn in_netns<T: Send + 'static>(path: &Path, f: impl FnOnce() -> T + Send + 'static) -> T {
    let ns = std::fs::File::open(path).unwrap();
    std::thread::spawn(move || {
        setns(ns.as_fd(), CloneFlags::CLONE_NEWNET).unwrap();
        f()
    })
    .join()
    .unwrap()
}

#[test]
fn a_namespace_on_a_bridge_talks_to_the_host_and_leaves_nothing() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let ns_path = dir.path().join("netns").join("c1");
    let net = test_network();
    let mut host = Netlink::open().unwrap();

    netns::create(&ns_path).unwrap();
    assert!(netns::exists(&ns_path));
    netns::create(&ns_path).unwrap(); // idempotent
    endpoint::loopback_up(&ns_path).unwrap();
    let bridge_index = bridge::ensure(&mut host, &net).unwrap();
    assert_eq!(bridge::ensure(&mut host, &net).unwrap(), bridge_index);

    let mut state = NetworkState::default();
    let owner = Owner {
        id: "c1",
        name: "one",
        dir: dir.path(),
    };
    let ep = ipam::allocate(&mut state, &net, owner, "eth0").unwrap();
    assert_eq!(ep.ip, Ipv4Addr::new(10, 251, net.gateway.octets()[2], 2));
    endpoint::connect(&mut host, bridge_index, &ns_path, &net, &ep).unwrap();

    // The host end is a port of the bridge.
    let master = std::fs::read_link(Path::new("/sys/class/net").join(&ep.veth).join("master"));
    assert_eq!(
        master.unwrap().file_name().unwrap().to_str(),
        Some(net.bridge.as_str())
    );
    // Inside: lo and eth0 up, eth0 with the endpoint's MAC.
    let inside = in_netns(&ns_path, || {
        let mut nl = Netlink::open().unwrap();
        link::list(&mut nl).unwrap()
    });
    let eth0 = inside.iter().find(|l| l.name == "eth0").unwrap();
    assert!(eth0.up);
    assert_eq!(ipam::format_mac(&eth0.mac), ep.mac);
    assert!(inside.iter().any(|l| l.name == "lo" && l.up));

    // TCP from the namespace to the host's bridge address...
    let listener = TcpListener::bind((net.gateway, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let gateway = net.gateway;
    let sender = std::thread::spawn({
        let ns_path = ns_path.clone();
        move || {
            in_netns(&ns_path, move || {
                let mut s = TcpStream::connect((gateway, port)).unwrap();
                s.write_all(b"from the namespace").unwrap();
            })
        }
    });
    let (mut conn, peer) = listener.accept().unwrap();
    let mut got = String::new();
    conn.read_to_string(&mut got).unwrap();
    sender.join().unwrap();
    assert_eq!(got, "from the namespace");
    assert_eq!(peer.ip(), std::net::IpAddr::V4(ep.ip));
    // ... and from the host to a server in the namespace.
    let ip = ep.ip;
    let inner = in_netns(&ns_path, move || TcpListener::bind((ip, 0)).unwrap());
    let inner_port = inner.local_addr().unwrap().port();
    let mut s = TcpStream::connect((ep.ip, inner_port)).unwrap();
    s.write_all(b"to the namespace").unwrap();
    drop(s);
    let (mut conn, _) = inner.accept().unwrap();
    let mut got = String::new();
    conn.read_to_string(&mut got).unwrap();
    assert_eq!(got, "to the namespace");

    // Firewall rules carry their owner and go with it.
    let owner = firewall::container_owner("plumbing-test-container");
    firewall::ensure_network(&net).unwrap();
    let port = PublishedPort {
        host_ip: Ipv4Addr::LOCALHOST,
        host_port: 1,
        container_port: 80,
        protocol: Protocol::Tcp,
    };
    firewall::add_ports("plumbing-test-container", ep.ip, &[port]).unwrap();
    let owned = |o: &str| {
        firewall::rules()
            .unwrap()
            .unwrap_or_default()
            .iter()
            .filter(|r| r.comment.as_deref() == Some(o))
            .count()
    };
    assert_eq!(owned(&owner), 2, "prerouting and output");
    assert!(owned(&firewall::network_owner(&net.name)) >= 2);
    firewall::remove_owned(&owner).unwrap();
    firewall::remove_owned(&firewall::network_owner(&net.name)).unwrap();
    assert_eq!(owned(&owner), 0);
    assert_eq!(owned(&firewall::network_owner(&net.name)), 0);

    endpoint::disconnect(&mut host, &ep).unwrap();
    assert!(!link_exists(&ep.veth));
    netns::remove(&ns_path).unwrap();
    assert!(!ns_path.exists());
    bridge::delete(&mut host, &net).unwrap();
    assert!(!link_exists(&net.bridge));
    bridge::delete(&mut host, &net).unwrap(); // missing is fine
}
