//! The network store: every network and every endpoint (a container's
//! attachment to a network: its address, MAC, veth and published ports) in
//! one JSON file, `networks.json` in the store's directory. Networks are
//! the host's (a bridge and a subnet are host objects), so there is one
//! store per host, shared by every vessel root (as podman keeps its
//! networks apart from its storage roots).
//!
//! Writers hold the directory's `lock` (an flock) from reading the file to
//! replacing it, so two concurrent `vessel run`s never hand out one address
//! twice; the file is replaced by rename after an fsync, so a reader needs
//! no lock and a crash leaves the old or the new state, never half of one.
//! An endpoint is owned by a container id; the engine's reconciliation
//! frees those whose container is gone (see docs/network.md).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{NetError, Result};
use crate::ports::PublishedPort;
use crate::subnet::Subnet;

/// The name of the predefined network (docker's).
pub const DEFAULT_NETWORK: &str = "bridge";
/// The predefined network's bridge interface.
pub const DEFAULT_BRIDGE: &str = "vessel0";
/// The predefined network's subnet: not podman's 10.88.0.0/16 (its
/// default network on the same hosts) nor docker's 172.17.0.0/16.
pub const DEFAULT_SUBNET: &str = "10.87.0.0/16";

/// A network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    /// Unique name.
    pub name: String,
    /// 64 hex digits.
    pub id: String,
    /// Always `bridge`.
    pub driver: String,
    /// The addresses of its containers.
    pub subnet: Subnet,
    /// The bridge's address, the containers' default route.
    pub gateway: Ipv4Addr,
    /// The Linux bridge.
    pub bridge: String,
    /// `--internal`: no outbound NAT, no forwarding off the network.
    pub internal: bool,
    /// RFC 3339 creation time.
    pub created: String,
}

impl Network {
    /// The predefined `bridge` network.
    pub fn predefined() -> Network {
        let subnet: Subnet = DEFAULT_SUBNET.parse().expect("a valid constant");
        Network {
            name: DEFAULT_NETWORK.to_owned(),
            id: id_of(DEFAULT_NETWORK, &subnet),
            driver: "bridge".to_owned(),
            subnet,
            gateway: subnet.first_host(),
            bridge: DEFAULT_BRIDGE.to_owned(),
            internal: false,
            created: String::new(),
        }
    }

    /// Whether names of containers resolve on it (docker: user-defined
    /// networks only).
    pub fn resolves_names(&self) -> bool {
        self.name != DEFAULT_NETWORK
    }
}

/// A network's id: a digest of its name and subnet (and so stable for the
/// predefined one).
pub fn id_of(name: &str, subnet: &Subnet) -> String {
    hex::encode(Sha256::digest(format!("vessel-network/{name}/{subnet}")))
}

/// A container's attachment to a network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// The container's id (the owner of the address).
    pub container: String,
    /// The container's name, for the other containers' /etc/hosts.
    pub container_name: String,
    /// The container's directory (its store may be another vessel root:
    /// networks belong to the host, containers to a root).
    pub container_dir: PathBuf,
    /// The network's name.
    pub network: String,
    /// The container's address.
    pub ip: Ipv4Addr,
    /// The container's MAC address (`02:42:` and the address, as docker).
    pub mac: String,
    /// The host end of the veth pair.
    pub veth: String,
    /// The interface inside the container (`eth0`, `eth1`, ...).
    pub interface: String,
    /// Published ports (on the container's first network only).
    #[serde(default)]
    pub ports: Vec<PublishedPort>,
}

/// Everything the store holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkState {
    /// Networks by name (the predefined one only once used).
    pub networks: BTreeMap<String, Network>,
    /// Endpoints, in the order they were made.
    pub endpoints: Vec<Endpoint>,
}

impl NetworkState {
    /// The network called `name` (the predefined one always exists).
    pub fn network(&self, name: &str) -> Result<Network> {
        match self.networks.get(name) {
            Some(n) => Ok(n.clone()),
            None if name == DEFAULT_NETWORK => Ok(Network::predefined()),
            None => Err(NetError::NotFound(name.to_owned())),
        }
    }

    /// Every network, the predefined one included.
    pub fn all_networks(&self) -> Vec<Network> {
        let mut all: Vec<Network> = self.networks.values().cloned().collect();
        if !self.networks.contains_key(DEFAULT_NETWORK) {
            all.insert(0, Network::predefined());
        }
        all
    }

    /// The network with this name, full id or unique id prefix.
    pub fn resolve(&self, name_or_id: &str) -> Result<Network> {
        if let Ok(n) = self.network(name_or_id) {
            return Ok(n);
        }
        let matches: Vec<Network> = self
            .all_networks()
            .into_iter()
            .filter(|n| !name_or_id.is_empty() && n.id.starts_with(name_or_id))
            .collect();
        match matches.as_slice() {
            [one] => Ok(one.clone()),
            _ => Err(NetError::NotFound(name_or_id.to_owned())),
        }
    }

    /// The endpoints of one container.
    pub fn endpoints_of<'a>(&'a self, container: &'a str) -> impl Iterator<Item = &'a Endpoint> {
        self.endpoints
            .iter()
            .filter(move |e| e.container == container)
    }

    /// The endpoints on one network.
    pub fn endpoints_on<'a>(&'a self, network: &'a str) -> impl Iterator<Item = &'a Endpoint> {
        self.endpoints.iter().filter(move |e| e.network == network)
    }
}

/// The store in one directory.
#[derive(Debug, Clone)]
pub struct NetworkStore {
    dir: PathBuf,
}

impl NetworkStore {
    /// The store in `dir` (created on the first write).
    pub fn open(dir: impl Into<PathBuf>) -> NetworkStore {
        NetworkStore { dir: dir.into() }
    }

    fn file(&self) -> PathBuf {
        self.dir.join("networks.json")
    }

    /// The current state, without a lock.
    pub fn read(&self) -> Result<NetworkState> {
        let path = self.file();
        match std::fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|source| NetError::Corrupt { path, source })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(NetworkState::default()),
            Err(e) => Err(NetError::io("read", path)(e)),
        }
    }

    /// Read, change and write the state under the store's lock. `f` runs
    /// with the lock held (it may also change the system: links, rules),
    /// and nothing is written when it fails or changes nothing.
    pub fn update<T>(&self, f: impl FnOnce(&mut NetworkState) -> Result<T>) -> Result<T> {
        let _lock = self.lock()?;
        let before = self.read()?;
        let mut state = before.clone();
        let out = f(&mut state)?;
        if state != before {
            write_atomic(&self.file(), &state)?;
        }
        Ok(out)
    }

    /// Hold the store's lock (for work that must not interleave with
    /// another writer's but writes nothing).
    pub fn lock(&self) -> Result<Flock<File>> {
        std::fs::create_dir_all(&self.dir).map_err(NetError::io("create", &self.dir))?;
        let path = self.dir.join("lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(NetError::io("open", &path))?;
        Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, e)| NetError::sys("flock of the network store")(e))
    }
}

fn write_atomic(path: &Path, state: &NetworkState) -> Result<()> {
    let tmp = path.with_extension("json.tmp");
    let bytes = serde_json::to_vec_pretty(state).expect("the state serializes");
    let mut f = File::create(&tmp).map_err(NetError::io("create", &tmp))?;
    f.write_all(&bytes)
        .and_then(|()| f.sync_all())
        .map_err(NetError::io("write", &tmp))?;
    std::fs::rename(&tmp, path).map_err(NetError::io("replace", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_writes_and_read_sees_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = NetworkStore::open(dir.path().join("networks"));
        assert_eq!(store.read().unwrap(), NetworkState::default());
        assert_eq!(
            store.read().unwrap().network("bridge").unwrap().bridge,
            "vessel0"
        );
        assert!(matches!(
            store.read().unwrap().network("nope"),
            Err(NetError::NotFound(_))
        ));
        store
            .update(|s| {
                let n = Network::predefined();
                s.networks.insert(n.name.clone(), n);
                Ok(())
            })
            .unwrap();
        let s = store.read().unwrap();
        assert_eq!(s.all_networks().len(), 1);
        let id = s.network("bridge").unwrap().id;
        assert_eq!(s.resolve(&id[..12]).unwrap().name, "bridge");
        assert!(store
            .update(|_| -> Result<()> { Err(NetError::NotFound("x".into())) })
            .is_err());
    }

    #[test]
    fn a_corrupt_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("networks.json"), "{not json").unwrap();
        let e = NetworkStore::open(dir.path())
            .read()
            .unwrap_err()
            .to_string();
        assert!(e.contains("networks.json"), "{e}");
    }
}
