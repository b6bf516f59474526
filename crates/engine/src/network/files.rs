//! The files that tell a container about its network: `/etc/hosts`,
//! `/etc/hostname` and `/etc/resolv.conf`, kept in the container's
//! directory and bind-mounted over the image's.
//!
//! Names of containers on user-defined networks resolve through
//! `/etc/hosts` (as early docker did, before its embedded DNS server):
//! whenever a container joins or leaves such a network, the hosts file of
//! every container on it is rewritten. The files are rewritten in place
//! (truncate and write, never rename): a bind mount holds the inode.

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::Path;

use vessel_net::NetworkState;

use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::record::{ContainerRecord, NetworkMode};

/// The files, by their name in the container's directory and inside it.
pub(super) const MOUNTED: [(&str, &str); 3] = [
    ("hosts", "/etc/hosts"),
    ("hostname", "/etc/hostname"),
    ("resolv.conf", "/etc/resolv.conf"),
];

/// Docker's nameservers when the host has none a container can use.
const FALLBACK_NAMESERVERS: [&str; 2] = ["8.8.8.8", "8.8.4.4"];

/// A hosts file: localhost, the container's own addresses with its
/// hostname (and name), then the other containers of its user-defined
/// networks by name.
pub fn hosts_file(
    hostname: &str,
    name: &str,
    own: &[Ipv4Addr],
    peers: &[(Ipv4Addr, String)],
) -> String {
    let mut out = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    let names = if name.is_empty() || name == hostname {
        hostname.to_owned()
    } else {
        format!("{hostname} {name}")
    };
    for ip in own {
        out.push_str(&format!("{ip}\t{names}\n"));
    }
    for (ip, peer) in peers {
        out.push_str(&format!("{ip}\t{peer}\n"));
    }
    out
}

/// A container's resolv.conf from the host's: its nameservers except the
/// loopback ones (a stub resolver on the host's 127.0.0.53 is not reachable
/// from the container's namespace), its search and options lines.
pub fn resolv_conf(host: &str) -> String {
    let mut servers = Vec::new();
    let mut rest = Vec::new();
    for line in host.lines().map(str::trim) {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => {
                if let Some(ip) = words.next() {
                    if !ip.starts_with("127.") && ip != "::1" {
                        servers.push(ip.to_owned());
                    }
                }
            }
            Some("search") | Some("domain") | Some("options") => rest.push(line.to_owned()),
            _ => {}
        }
    }
    if servers.is_empty() {
        servers = FALLBACK_NAMESERVERS
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
    }
    let mut out: String = servers
        .iter()
        .map(|s| format!("nameserver {s}\n"))
        .collect();
    for l in rest {
        out.push_str(&l);
        out.push('\n');
    }
    out
}

/// Replace `path`'s content, keeping its inode (see the module's doc).
pub(super) fn write_in_place(path: &Path, content: &str) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(EngineError::io("cannot write", path))?;
    f.write_all(content.as_bytes())
        .map_err(EngineError::io("cannot write", path))
}

/// The files of a new container (its address comes at start).
pub(super) fn write_initial(engine: &Engine, record: &ContainerRecord) -> Result<()> {
    let dir = engine.containers().dir(&record.id);
    let host_file = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cfg = &record.config;
    let (hosts, resolv) = if cfg.network == NetworkMode::Host {
        (host_file("/etc/hosts"), host_file("/etc/resolv.conf"))
    } else {
        (
            hosts_file(&cfg.hostname, &record.name, &[], &[]),
            resolv_conf(&host_file("/etc/resolv.conf")),
        )
    };
    write_in_place(&dir.join("hosts"), &hosts)?;
    write_in_place(&dir.join("hostname"), &format!("{}\n", cfg.hostname))?;
    write_in_place(&dir.join("resolv.conf"), &resolv)
}

/// Rewrite the hosts file of container `id` (in `dir`) from `state`.
pub(super) fn refresh_hosts(state: &NetworkState, id: &str, dir: &Path) -> Result<()> {
    let Ok(bytes) = std::fs::read(dir.join("container.json")) else {
        return Ok(()); // removed meanwhile
    };
    let Ok(record) = serde_json::from_slice::<ContainerRecord>(&bytes) else {
        return Ok(());
    };
    let own: Vec<_> = state.endpoints_of(id).collect();
    let mut peers = Vec::new();
    for ep in &own {
        let resolves = state.network(&ep.network).is_ok_and(|n| n.resolves_names());
        if resolves {
            for peer in state
                .endpoints_on(&ep.network)
                .filter(|p| p.container != id)
            {
                peers.push((peer.ip, peer.container_name.clone()));
            }
        }
    }
    let ips: Vec<Ipv4Addr> = own.iter().map(|e| e.ip).collect();
    let content = hosts_file(&record.config.hostname, &record.name, &ips, &peers);
    write_in_place(&dir.join("hosts"), &content)
}

/// Rewrite the hosts files of container `id` and of every container on the
/// user-defined networks in `networks`.
pub(super) fn refresh_around(
    state: &NetworkState,
    id: &str,
    dir: &Path,
    networks: &[String],
) -> Result<()> {
    refresh_hosts(state, id, dir)?;
    let mut done = vec![id.to_owned()];
    for n in networks {
        if !state.network(n).is_ok_and(|n| n.resolves_names()) {
            continue;
        }
        for peer in state.endpoints_on(n) {
            if !done.contains(&peer.container) {
                done.push(peer.container.clone());
                refresh_hosts(state, &peer.container, &peer.container_dir)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_lists_self_and_peers() {
        let h = hosts_file(
            "abc123",
            "web",
            &[Ipv4Addr::new(10, 90, 1, 2)],
            &[(Ipv4Addr::new(10, 90, 1, 3), "db".into())],
        );
        assert!(h.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(h.contains("10.90.1.2\tabc123 web\n"), "{h}");
        assert!(h.contains("10.90.1.3\tdb\n"), "{h}");
        assert!(hosts_file("same", "same", &[Ipv4Addr::LOCALHOST], &[]).contains("\tsame\n"));
    }

    #[test]
    fn resolv_conf_skips_loopback_nameservers() {
        let host = "# comment\nnameserver 127.0.0.53\nnameserver 10.255.255.53\nnameserver ::1\nsearch example.org\noptions edns0\n";
        assert_eq!(
            resolv_conf(host),
            "nameserver 10.255.255.53\nsearch example.org\noptions edns0\n"
        );
        assert_eq!(
            resolv_conf("nameserver 127.0.0.53\n"),
            "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"
        );
    }

    #[test]
    fn rewriting_keeps_the_inode() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("hosts");
        write_in_place(&f, "a long first version\n").unwrap();
        let ino = std::fs::metadata(&f).unwrap().ino();
        write_in_place(&f, "short\n").unwrap();
        assert_eq!(std::fs::metadata(&f).unwrap().ino(), ino);
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "short\n");
    }
}
