//! `vessel` networking end to end, as root, with real containers: names
//! resolve between containers of a user-defined network, outbound NAT
//! reaches a namespace made to stand for the outside world, a published
//! port on 127.0.0.1 serves the host, 30 concurrent runs get distinct
//! addresses, `kill -9` of every monitor leaves nothing after the next
//! command, and bad specs change nothing. Every network is unique to its
//! test (name and subnet) and removed on drop; all traffic stays on
//! loopback or inside namespaces the tests create.

mod engine_common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command};

use engine_common::{nft_table, stderr, Store, IMAGE};

/// A user-defined network for one test: `vtN-PID`, subnet 10.(200+N).X.0/24
/// with X from the pid, removed (with the store's containers) on drop.
struct TestNet<'a> {
    store: &'a Store,
    name: String,
    subnet: String,
    prefix: String,
}

impl<'a> TestNet<'a> {
    fn new(store: &'a Store, n: u8, extra: &[&str]) -> TestNet<'a> {
        let pid = std::process::id();
        let prefix = format!("10.{}.{}", 200 + u32::from(n), pid % 250);
        let net = TestNet {
            store,
            name: format!("vt{n}-{pid}"),
            subnet: format!("{prefix}.0/24"),
            prefix,
        };
        let mut args = vec!["network", "create", "--subnet", &net.subnet];
        args.extend_from_slice(extra);
        args.push(&net.name);
        store.ok(&args);
        net
    }
}

impl Drop for TestNet<'_> {
    fn drop(&mut self) {
        if let Ok(o) = self.store.cmd(&["ps", "-aq", "--no-trunc"]).output() {
            for id in String::from_utf8_lossy(&o.stdout).lines() {
                let _ = self.store.cmd(&["rm", "-f", id]).output();
            }
        }
        let _ = self.store.cmd(&["network", "rm", &self.name]).output();
    }
}

fn links() -> Vec<String> {
    std::fs::read_dir("/sys/class/net")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

fn ip_of(store: &Store, c: &str) -> Ipv4Addr {
    store
        .inspect(c, "{{.NetworkSettings.IPAddress}}")
        .parse()
        .unwrap()
}

/// Connect to the host port, waiting (up to a generous bound) for the
/// server in the container to listen: `run -d` returns when the container
/// process starts, not when its server is ready.
fn connect(port: u16) -> TcpStream {
    let mut last = None;
    for _ in 0..200 {
        match TcpStream::connect((Ipv4Addr::LOCALHOST, port)) {
            Ok(s) => return s,
            Err(e) => last = Some(e),
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("connect to 127.0.0.1:{port}: {last:?}");
}

fn http_get(port: u16, path: &str) -> String {
    let mut s = connect(port);
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn containers_on_a_user_network_reach_each_other_by_name() {
    let store = Store::new();
    let net = TestNet::new(&store, 0, &[]);
    store.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        &net.name,
        IMAGE,
        "sh",
        "-c",
        "mkdir /www && echo served-by-web > /www/index.html && exec httpd -f -p 80 -h /www",
    ]);
    let web_ip = ip_of(&store, "web");
    assert!(web_ip.to_string().starts_with(&net.prefix), "{web_ip}");
    let out = store.ok(&[
        "run",
        "--rm",
        "--name",
        "client",
        "--network",
        &net.name,
        IMAGE,
        "sh",
        "-c",
        "cat /etc/hosts; for i in $(seq 100); do timeout 5 wget -q -O - http://web/ && break; sleep 0.1; done",
    ]);
    assert!(out.contains(&format!("{web_ip}\tweb")), "{out}");
    assert!(out.contains("served-by-web"), "{out}");
    // web's own hosts file learnt the client's name while it ran.
    let nc = store.ok(&[
        "run",
        "--rm",
        "--name",
        "pinger",
        "--network",
        &net.name,
        IMAGE,
        "sh",
        "-c",
        "echo hello | nc web 80 | head -1",
    ]);
    assert!(nc.contains("HTTP/1"), "{nc}");
    // The default bridge network does not resolve names (docker's rule).
    let o = store.vessel(&[
        "run",
        "--rm",
        IMAGE,
        "sh",
        "-c",
        "timeout 2 wget -q -O - http://web/",
    ]);
    assert!(!o.status.success());
}

/// A namespace standing for the outside world: reachable from the host by
/// a veth pair, with no route back to any container subnet, so a reply
/// reaches a container only through the masquerade.
struct Uplink {
    ns: String,
    server: Child,
    addr: Ipv4Addr,
}

impl Uplink {
    fn new(dir: &Path) -> Uplink {
        let pid = std::process::id();
        let n = pid % 250;
        let ns = format!("vtup{pid}");
        let (host_if, ns_if) = (format!("vtuh{n}"), format!("vtun{n}"));
        let host_addr = format!("10.199.{n}.1/24");
        let addr = Ipv4Addr::new(10, 199, n as u8, 2);
        let ip = |args: &[&str]| {
            let o = Command::new("ip").args(args).output().unwrap();
            assert!(o.status.success(), "ip {args:?}: {}", stderr(&o));
        };
        ip(&["netns", "add", &ns]);
        ip(&[
            "link", "add", &host_if, "type", "veth", "peer", "name", &ns_if, "netns", &ns,
        ]);
        ip(&["addr", "add", &host_addr, "dev", &host_if]);
        ip(&["link", "set", &host_if, "up"]);
        ip(&[
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{addr}/24"),
            "dev",
            &ns_if,
        ]);
        ip(&["-n", &ns, "link", "set", &ns_if, "up"]);
        ip(&["-n", &ns, "link", "set", "lo", "up"]);
        std::fs::write(dir.join("index.html"), "outside-world\n").unwrap();
        let server = Command::new("ip")
            .args(["netns", "exec", &ns, "busybox", "httpd", "-f", "-p"])
            .arg(format!("{addr}:8000"))
            .arg("-h")
            .arg(dir)
            .spawn()
            .unwrap();
        Uplink { ns, server, addr }
    }
}

impl Drop for Uplink {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        // Deleting the namespace deletes its veth end, and so the pair.
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).output();
    }
}

#[test]
fn outbound_traffic_is_masqueraded_and_internal_networks_stay_inside() {
    let store = Store::new();
    let uplink = Uplink::new(store.dir.path());
    let url = format!("http://{}:8000/", uplink.addr);
    let fetch = format!("timeout 5 wget -q -O - {url}");
    // The default bridge network, as `vessel run` uses without --network.
    let out = store.ok(&["run", "--rm", IMAGE, "sh", "-c", &fetch]);
    assert_eq!(out, "outside-world\n");
    let net = TestNet::new(&store, 1, &[]);
    let out = store.ok(&[
        "run",
        "--rm",
        "--network",
        &net.name,
        IMAGE,
        "sh",
        "-c",
        &fetch,
    ]);
    assert_eq!(out, "outside-world\n");
    let internal = TestNet::new(&store, 2, &["--internal"]);
    let o = store.vessel(&[
        "run",
        "--rm",
        "--network",
        &internal.name,
        IMAGE,
        "sh",
        "-c",
        &fetch,
    ]);
    assert!(
        !o.status.success(),
        "an internal network reached the outside"
    );
    // --network none has only loopback, up.
    let out = store.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        IMAGE,
        "sh",
        "-c",
        "ls /sys/class/net; ping -c1 -W1 127.0.0.1 >/dev/null && echo lo-up",
    ]);
    assert_eq!(out, "lo\nlo-up\n");
}

#[test]
fn a_published_port_serves_the_host_until_the_container_stops() {
    let store = Store::new();
    let net = TestNet::new(&store, 3, &[]);
    store.ok(&[
        "run",
        "-d",
        "--name",
        "site",
        "--network",
        &net.name,
        "-p",
        "127.0.0.1::80",
        IMAGE,
        "sh",
        "-c",
        "mkdir -p /www && echo published > /www/index.html && exec httpd -f -p 80 -h /www",
    ]);
    let mapping = store.ok(&["port", "site", "80"]);
    let port: u16 = mapping.trim().rsplit(':').next().unwrap().parse().unwrap();
    assert!(mapping.starts_with("127.0.0.1:"), "{mapping}");
    let reply = http_get(port, "/");
    assert!(reply.starts_with("HTTP/1"), "{reply}");
    assert!(reply.ends_with("published\n"), "{reply}");
    let ps = store.ok(&["ps"]);
    assert!(ps.contains(&format!("127.0.0.1:{port}->80/tcp")), "{ps}");
    let ports = store.inspect("site", "{{json .NetworkSettings.Ports}}");
    assert!(
        ports.contains(&format!("\"HostPort\":\"{port}\"")),
        "{ports}"
    );
    // Taken while it runs, by vessel and for everyone else.
    assert!(TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_err());
    let o = store.vessel(&[
        "run",
        "--rm",
        "--network",
        &net.name,
        "-p",
        &format!("127.0.0.1:{port}:80"),
        IMAGE,
        "true",
    ]);
    assert_eq!(o.status.code(), Some(125));
    assert!(
        stderr(&o).contains(&format!("127.0.0.1:{port}")),
        "{}",
        stderr(&o)
    );
    let id = store.inspect("site", "{{.Id}}");
    assert!(nft_table().contains(&format!("vessel-ctr:{id}")));
    store.ok(&["stop", "-t", "1", "site"]);
    // Released: the port, the rules, the veth, the namespace.
    drop(TcpListener::bind((Ipv4Addr::LOCALHOST, port)).unwrap());
    assert!(!nft_table().contains(&format!("vessel-ctr:{id}")));
    assert!(!store.runroot().join("netns").join(&id).exists());
    // And back on restart.
    store.ok(&["start", "site"]);
    let mapping = store.ok(&["port", "site", "80"]);
    let port: u16 = mapping.trim().rsplit(':').next().unwrap().parse().unwrap();
    assert!(http_get(port, "/").ends_with("published\n"));
}

#[test]
fn a_port_in_use_is_a_clear_error_and_leaves_nothing() {
    let store = Store::new();
    let net = TestNet::new(&store, 4, &[]);
    let taken = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = taken.local_addr().unwrap().port();
    let bridge = store.ok(&["network", "inspect", "-f", "{{json .Options}}", &net.name]);
    let bridge: serde_json::Value = serde_json::from_str(&bridge).unwrap();
    let ports_of_bridge = Path::new("/sys/class/net")
        .join(bridge["com.docker.network.bridge.name"].as_str().unwrap())
        .join("brif");
    let o = store.vessel(&[
        "run",
        "--rm",
        "--name",
        "blocked",
        "--network",
        &net.name,
        "-p",
        &format!("127.0.0.1:{port}:80"),
        IMAGE,
        "true",
    ]);
    assert_eq!(o.status.code(), Some(125));
    let e = stderr(&o);
    assert!(
        e.contains(&format!("host port 127.0.0.1:{port}/tcp is not available")),
        "{e}"
    );
    assert!(store.ok(&["ps", "-aq"]).is_empty(), "--rm removed it");
    assert_eq!(
        std::fs::read_dir(&ports_of_bridge).unwrap().count(),
        0,
        "a veth was left"
    );
    let inspect = store.ok(&[
        "network",
        "inspect",
        "-f",
        "{{json .Containers}}",
        &net.name,
    ]);
    assert_eq!(inspect.trim(), "{}");
}

#[test]
fn thirty_concurrent_runs_on_one_network_get_distinct_addresses() {
    let store = Store::new();
    let net = TestNet::new(&store, 5, &[]);
    let children: Vec<Child> = (0..30)
        .map(|i| {
            store
                .cmd(&[
                    "run",
                    "-d",
                    "--name",
                    &format!("c{i}"),
                    "--network",
                    &net.name,
                    IMAGE,
                    "sleep",
                    "600",
                ])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let mut ips: Vec<Ipv4Addr> = (0..30).map(|i| ip_of(&store, &format!("c{i}"))).collect();
    for ip in &ips {
        assert!(ip.to_string().starts_with(&net.prefix), "{ip}");
    }
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 30, "an address was handed out twice");
    // Each container sees its own address on eth0.
    let own = store.ok(&["exec", "c7", "sh", "-c", "ip -4 -o addr show eth0"]);
    assert!(
        own.contains(&format!("{}/24", ip_of(&store, "c7"))),
        "{own}"
    );
}

#[test]
fn kill_9_of_every_monitor_leaks_nothing_after_the_next_command() {
    let store = Store::new();
    let net = TestNet::new(&store, 6, &[]);
    let mut ids = Vec::new();
    let mut veths = Vec::new();
    for i in 0..3 {
        let id = store.ok(&[
            "run",
            "-d",
            "--name",
            &format!("k{i}"),
            "--network",
            &net.name,
            "-p",
            "127.0.0.1::80",
            IMAGE,
            "sleep",
            "600",
        ]);
        let id = id.trim().to_owned();
        let networks = store.inspect(&id, "{{json .NetworkSettings.Networks}}");
        let networks: serde_json::Value = serde_json::from_str(&networks).unwrap();
        let veth = networks[&net.name]["EndpointID"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(links().contains(&veth), "{veth}");
        veths.push(veth);
        ids.push(id);
    }
    let first_ip = ip_of(&store, "k0");
    // Every vessel process and every container process dies at once.
    for id in &ids {
        let pid: i32 = store.inspect(id, "{{.State.Pid}}").parse().unwrap();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let monitor: i32 = status
            .lines()
            .find_map(|l| l.strip_prefix("PPid:"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        for p in [monitor, pid] {
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), nix::sys::signal::SIGKILL)
                .unwrap();
        }
    }
    // Wait for the container processes to be gone (reaped by init).
    for id in &ids {
        let pid: i32 = store.inspect(id, "{{.State.Pid}}").parse().unwrap();
        while Path::new(&format!("/proc/{pid}")).exists()
            && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .unwrap_or_default()
                .contains(") Z ")
        {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
    // The next command reconciles.
    let ps = store.ok(&["ps", "-a", "--format", "{{.Names}} {{.State}}"]);
    assert_eq!(ps.matches("exited").count(), 3, "{ps}");
    let table = nft_table();
    let now = links();
    for (id, veth) in ids.iter().zip(&veths) {
        assert!(!now.contains(veth), "veth {veth} leaked");
        assert!(
            !table.contains(&format!("vessel-ctr:{id}")),
            "rules of {id} leaked"
        );
        assert!(!store.runroot().join("netns").join(id).exists());
    }
    let inspect = store.ok(&[
        "network",
        "inspect",
        "-f",
        "{{json .Containers}}",
        &net.name,
    ]);
    assert_eq!(inspect.trim(), "{}");
    // No address was lost: a new container gets the first one again.
    store.ok(&[
        "run",
        "-d",
        "--name",
        "after",
        "--network",
        &net.name,
        IMAGE,
        "sleep",
        "600",
    ]);
    assert_eq!(ip_of(&store, "after"), first_ip);
}

#[test]
fn bad_specs_are_clear_errors_and_change_nothing() {
    let store = Store::new();
    let net = TestNet::new(&store, 7, &[]);
    // The network store is host-wide and other tests make their own `vtN-`
    // networks meanwhile: compare everything but theirs.
    let listing = || -> Vec<String> {
        store
            .ok(&["network", "ls", "-q"])
            .lines()
            .filter(|l| !l.starts_with("vt") || *l == net.name)
            .map(String::from)
            .collect()
    };
    let before = listing();
    let overlapping = format!("{}.128/25", net.prefix);
    let cases: Vec<(Vec<&str>, String)> = vec![
        (
            vec!["network", "create", "--subnet", &overlapping, "x1"],
            format!("overlaps network {}", net.name),
        ),
        (
            vec!["network", "create", "--subnet", "10.1.2.3/24", "x2"],
            "host bits are set".into(),
        ),
        (
            vec!["network", "create", "--subnet", "10.1.2.0/33", "x3"],
            "at most 32".into(),
        ),
        (
            vec!["network", "create", "--subnet", "banana", "x4"],
            "ADDRESS/PREFIX".into(),
        ),
        (
            vec!["network", "create", &net.name],
            "already exists".into(),
        ),
        (
            vec!["network", "create", "bad name"],
            "invalid network name".into(),
        ),
        (
            vec!["network", "rm", "no-such-net"],
            "network no-such-net not found".into(),
        ),
        (vec!["network", "rm", "bridge"], "pre-defined".into()),
        (
            vec!["run", "--rm", "--network", "no-such-net", IMAGE, "true"],
            "network no-such-net not found".into(),
        ),
        (
            vec!["run", "--rm", "-p", "80:80/sctp", IMAGE, "true"],
            "sctp".into(),
        ),
        (
            vec!["run", "--rm", "-p", "1.2.3:80:80", IMAGE, "true"],
            "not an IPv4".into(),
        ),
        (
            vec![
                "run",
                "--rm",
                "--network",
                "host",
                "-p",
                "80",
                IMAGE,
                "true",
            ],
            "bridge network".into(),
        ),
        (
            vec![
                "run",
                "--rm",
                "--network",
                "container:nobody",
                IMAGE,
                "true",
            ],
            "No such container".into(),
        ),
    ];
    for (args, reason) in &cases {
        let o = store.vessel(args);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(
            stderr(&o).contains(reason.as_str()),
            "{args:?}: {}",
            stderr(&o)
        );
    }
    assert_eq!(listing(), before);
    assert!(store.ok(&["ps", "-aq"]).is_empty());
    // A network in use cannot be removed.
    store.ok(&[
        "run",
        "-d",
        "--name",
        "user",
        "--network",
        &net.name,
        IMAGE,
        "sleep",
        "600",
    ]);
    let o = store.vessel(&["network", "rm", &net.name]);
    assert!(
        stderr(&o).contains("has active endpoints (containers user)"),
        "{}",
        stderr(&o)
    );
    // container: shares the namespace of a running container.
    let out = store.ok(&[
        "run",
        "--rm",
        "--network",
        "container:user",
        IMAGE,
        "sh",
        "-c",
        "ip -4 -o addr show eth0",
    ]);
    assert!(out.contains(&ip_of(&store, "user").to_string()), "{out}");
}

#[test]
fn connect_disconnect_host_mode_publish_all_and_the_container_files() {
    let store = Store::new();
    // An image that EXPOSEs 80, for -P.
    let ctx = store.dir.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(
        ctx.join("Containerfile"),
        format!("FROM {IMAGE}\nEXPOSE 80\n"),
    )
    .unwrap();
    store.ok(&["build", "-q", "-t", "localhost/web", ctx.to_str().unwrap()]);

    let prefix = format!("10.208.{}", std::process::id() % 250);
    let gateway = format!("{prefix}.254");
    let a = TestNet::new(&store, 8, &["--gateway", &gateway]);
    assert_eq!(a.prefix, prefix);
    store.ok(&[
        "run",
        "-d",
        "--name",
        "w",
        "--hostname",
        "webhost",
        "--network",
        &a.name,
        "-P",
        "localhost/web",
        "sh",
        "-c",
        "mkdir -p /www && echo all-ports > /www/index.html && exec httpd -f -p 80 -h /www",
    ]);
    // -P: the exposed port on a random host port of every address, which
    // 127.0.0.1 reaches too.
    let mapping = store.ok(&["port", "w", "80"]);
    assert!(mapping.starts_with("0.0.0.0:"), "{mapping}");
    let port: u16 = mapping.trim().rsplit(':').next().unwrap().parse().unwrap();
    assert!(http_get(port, "/").ends_with("all-ports\n"));

    // The files vessel writes, and the gateway asked for.
    let files = store.ok(&[
        "exec",
        "w",
        "sh",
        "-c",
        "cat /etc/hostname; ip route | grep ^default; grep -c '^nameserver 127' /etc/resolv.conf; grep webhost /etc/hosts",
    ]);
    let lines: Vec<&str> = files.lines().collect();
    assert_eq!(lines[0], "webhost", "{files}");
    assert!(
        lines[1].starts_with(&format!("default via {gateway} ")),
        "{files}"
    );
    assert_eq!(lines[2], "0", "a loopback nameserver in {files}");
    assert!(
        lines[3].starts_with(&format!("{}\t", ip_of(&store, "w"))),
        "{files}"
    );

    // connect: a second interface on another network, where w's name
    // resolves; disconnect takes it away again.
    let b = TestNet::new(&store, 9, &[]);
    store.ok(&["network", "connect", &b.name, "w"]);
    let eth1 = store.ok(&["exec", "w", "ip", "-4", "-o", "addr", "show", "eth1"]);
    assert!(eth1.contains(&format!("{}.", b.prefix)), "{eth1}");
    let networks = store.inspect("w", "{{json .NetworkSettings.Networks}}");
    assert!(
        networks.contains(&a.name) && networks.contains(&b.name),
        "{networks}"
    );
    let out = store.ok(&[
        "run",
        "--rm",
        "--network",
        &b.name,
        IMAGE,
        "sh",
        "-c",
        "for i in $(seq 100); do timeout 5 wget -q -O - http://w/ && break; sleep 0.1; done",
    ]);
    assert_eq!(out, "all-ports\n");
    store.ok(&["network", "disconnect", &b.name, "w"]);
    let links_in_w = store.ok(&["exec", "w", "ls", "/sys/class/net"]);
    assert!(!links_in_w.contains("eth1"), "{links_in_w}");
    let on_b = store.ok(&["network", "inspect", "-f", "{{json .Containers}}", &b.name]);
    assert_eq!(on_b.trim(), "{}");

    // --network host: the host's interfaces, a's bridge among them.
    let bridge = store.ok(&["network", "inspect", "-f", "{{json .Options}}", &a.name]);
    let bridge: serde_json::Value = serde_json::from_str(&bridge).unwrap();
    let bridge = bridge["com.docker.network.bridge.name"].as_str().unwrap();
    let host_links = store.ok(&[
        "run",
        "--rm",
        "--network",
        "host",
        IMAGE,
        "ip",
        "-o",
        "link",
    ]);
    assert!(host_links.contains(&format!(": {bridge}:")), "{host_links}");
}
