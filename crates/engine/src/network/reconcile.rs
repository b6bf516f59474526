//! Leftovers of containers whose monitor died (`kill -9`, a crash, a
//! reboot): their endpoints (addresses, veths, port rules) and network
//! namespaces are freed on the next `vessel` command that reconciles
//! (`ps`, `create`/`run`, the `network` commands).

use std::path::Path;

use super::attach::release_endpoints;
use super::net_err;
use crate::engine::Engine;
use crate::error::Result;
use crate::monitor::lock;
use crate::record::ContainerRecord;

impl Engine {
    /// Free the network resources of every container that no longer runs:
    /// endpoints in the host's network store (of any vessel root) and the
    /// network namespaces under this root's run directory.
    pub fn reconcile_networks(&self) -> Result<()> {
        let store = self.network_store();
        let state = store.read().map_err(net_err("Networks"))?;
        let mut owners: Vec<(String, std::path::PathBuf)> = state
            .endpoints
            .iter()
            .map(|e| (e.container.clone(), e.container_dir.clone()))
            .collect();
        owners.dedup();
        for (id, dir) in owners {
            if !self.is_alive(&id, &dir)? {
                release_endpoints(&store, &id, None)?;
            }
        }
        let netns_dir = self.config().run_root.join("netns");
        if let Ok(entries) = std::fs::read_dir(&netns_dir) {
            for entry in entries.flatten() {
                let id = entry.file_name().to_string_lossy().into_owned();
                if !self.is_alive(&id, &self.containers().dir(&id))? {
                    vessel_net::netns::remove(&entry.path())
                        .map_err(net_err(format!("Container {id}: network")))?;
                }
            }
        }
        Ok(())
    }

    /// Whether container `id` in `dir` may still use its network: its
    /// monitor runs, or (after reconciliation) its process does. A
    /// container of another root counts as alive while its record says
    /// so (that root's own reconciliation decides).
    fn is_alive(&self, id: &str, dir: &Path) -> Result<bool> {
        let Ok(bytes) = std::fs::read(dir.join("container.json")) else {
            return Ok(false);
        };
        if lock::is_held(dir)? {
            return Ok(true);
        }
        let Ok(record) = serde_json::from_slice::<ContainerRecord>(&bytes) else {
            return Ok(false);
        };
        if dir == self.containers().dir(id) {
            return Ok(self.reconcile(record)?.state.status.is_active());
        }
        Ok(record.state.status.is_active())
    }
}
