//! What happens to a container after it started: `stop`, `kill`, `wait`,
//! `restart`, `pause`/`unpause`, `rename`, `top`, `stats` — and the
//! reconciliation that keeps every answer true after a monitor died.

use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use vessel_runtime::{Container, ContainerStatus, DeleteOptions, RuntimeError, StateStore};

use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::monitor::{lock, Attach, Outcome};
use crate::record::{ContainerRecord, Status};

/// Exit code recorded when the monitor vanished before it could record one
/// (docker records 255 for containers whose daemon died under them).
pub const EXIT_MONITOR_LOST: i32 = 255;

/// How often the state is polled while waiting for a process to end.
const POLL: Duration = Duration::from_millis(10);

/// One process of a container (`vessel top`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProcessInfo {
    /// Host pid.
    pub pid: i32,
    /// Parent's host pid.
    pub ppid: i32,
    /// Real uid (as the host sees it).
    pub uid: u32,
    /// Command line (or `[name]` when it has none).
    pub cmd: String,
}

impl Engine {
    fn runtime(&self, id: &str) -> Result<StateStore> {
        StateStore::open(&self.runtime_root()).map_err(|source| EngineError::Runtime {
            id: id.to_owned(),
            source: Box::new(source),
        })
    }

    /// The runtime's view of container `id`, if it has one.
    fn runtime_container(&self, id: &str) -> Result<Option<Container>> {
        match Container::load(&self.runtime(id)?, id) {
            Ok(c) => Ok(Some(c)),
            Err(RuntimeError::NotFound(_)) => Ok(None),
            Err(e) => Err(EngineError::Runtime {
                id: id.to_owned(),
                source: Box::new(e),
            }),
        }
    }

    /// Make `record` tell the truth when its monitor is gone (killed, or
    /// the host rebooted): a container whose process still runs stays
    /// running (unmonitored); otherwise it becomes exited with
    /// [`EXIT_MONITOR_LOST`] and the runtime's leftovers are deleted.
    pub fn reconcile(&self, record: ContainerRecord) -> Result<ContainerRecord> {
        let dir = self.containers().dir(&record.id);
        if !record.state.status.is_active() || lock::is_held(&dir)? {
            return Ok(record);
        }
        let id = record.id.clone();
        let alive = match self.runtime_container(&id)? {
            Some(c) => matches!(
                c.status(),
                ContainerStatus::Running | ContainerStatus::Paused
            ),
            None => false,
        };
        if alive {
            return Ok(record);
        }
        self.containers()
            .update(&id, |r| {
                // Re-checked under the record's lock: a monitor may have
                // finished (and recorded the truth) since the first look.
                if r.state.status.is_active() && !lock::is_held(&dir)? {
                    r.state.status = Status::Exited;
                    r.state.pid = 0;
                    r.state.monitor_pid = 0;
                    r.state.exit_code.get_or_insert(EXIT_MONITOR_LOST);
                    r.state
                        .finished_at
                        .get_or_insert_with(vessel_runtime::state::now_rfc3339);
                    r.state.error = Some("the container's monitor process died".into());
                }
                Ok(())
            })
            .and_then(|r| {
                if let Some(c) = self.runtime_container(&id)? {
                    let _ = c.delete(DeleteOptions { force: true });
                }
                if !r.state.status.is_active() {
                    crate::network::release(self, &id)?;
                }
                Ok(r)
            })
    }

    fn active(&self, container: &str, operation: &'static str) -> Result<ContainerRecord> {
        let id = self.containers().resolve(container)?;
        let record = self.reconcile(self.containers().load(&id)?)?;
        if !record.state.status.is_active() {
            return Err(EngineError::WrongState {
                id,
                status: record.state.status.to_string(),
                operation,
            });
        }
        Ok(record)
    }

    /// `vessel stop [-t SECONDS]`: the stop signal, then SIGKILL after
    /// `timeout`; returns when the container has exited. A container that is
    /// not running is left as it is (docker's behaviour).
    pub fn stop(&self, container: &str, timeout: Duration) -> Result<()> {
        let id = self.containers().resolve(container)?;
        let record = self.reconcile(self.containers().load(&id)?)?;
        if !record.state.status.is_active() {
            return Ok(());
        }
        self.mark_stopped_by_user(&id)?;
        let signal = record
            .config
            .stop_signal
            .as_deref()
            .map(parse_signal)
            .transpose()?
            .unwrap_or(Signal::SIGTERM);
        if let Some(c) = self.runtime_container(&id)? {
            if c.status() == ContainerStatus::Paused {
                let _ = c.resume();
            }
            let _ = c.kill(signal, false);
        }
        if !self.wait_gone(&id, Some(timeout))? {
            self.kill_now(&id)?;
        }
        self.wait_monitor(&id)
    }

    /// SIGKILL to every process of container `id`, and wait for the end.
    pub(crate) fn kill_now(&self, id: &str) -> Result<()> {
        self.mark_stopped_by_user(id)?;
        if let Some(c) = self.runtime_container(id)? {
            if c.status() == ContainerStatus::Paused {
                let _ = c.resume();
            }
            let _ = c.kill(Signal::SIGKILL, true);
        }
        self.wait_gone(id, None)?;
        self.wait_monitor(id)
    }

    fn mark_stopped_by_user(&self, id: &str) -> Result<()> {
        self.containers()
            .update(id, |r| {
                r.state.stopped_by_user = true;
                Ok(())
            })
            .map(drop)
    }

    /// Wait until the runtime no longer has a live process for `id`; false
    /// if `timeout` passed first.
    fn wait_gone(&self, id: &str, timeout: Option<Duration>) -> Result<bool> {
        let start = Instant::now();
        loop {
            let alive = match self.runtime_container(id)? {
                Some(c) => matches!(
                    c.status(),
                    ContainerStatus::Running | ContainerStatus::Paused | ContainerStatus::Created
                ),
                None => false,
            };
            if !alive {
                return Ok(true);
            }
            if timeout.is_some_and(|t| start.elapsed() >= t) {
                return Ok(false);
            }
            std::thread::sleep(POLL);
        }
    }

    /// Wait for the monitor of `id` (if any) to finish its bookkeeping.
    fn wait_monitor(&self, id: &str) -> Result<()> {
        lock::wait_released(&self.containers().dir(id))?;
        self.reconcile(self.containers().load(id)?).map(drop)
    }

    /// `vessel kill [-s SIGNAL]`: send a signal to the container's init.
    pub fn kill(&self, container: &str, signal: &str) -> Result<()> {
        let record = self.active(container, "kill (it is not running)")?;
        let sig = parse_signal(signal)?;
        let id = record.id;
        if matches!(sig, Signal::SIGKILL | Signal::SIGTERM | Signal::SIGINT) {
            // docker: a container the user kills is not restarted.
            self.mark_stopped_by_user(&id)?;
        }
        let c = self
            .runtime_container(&id)?
            .ok_or_else(|| EngineError::WrongState {
                id: id.clone(),
                status: "exited".into(),
                operation: "kill (it is not running)",
            })?;
        c.kill(sig, false).map_err(|source| EngineError::Runtime {
            id,
            source: Box::new(source),
        })
    }

    /// `vessel wait`: block until the container is not running; its exit
    /// code (0 for a container never started).
    pub fn wait(&self, container: &str) -> Result<i32> {
        let id = self.containers().resolve(container)?;
        loop {
            let record = self.reconcile(self.containers().load(&id)?)?;
            if !record.state.status.is_active() {
                return Ok(record.state.exit_code.unwrap_or(0));
            }
            let dir = self.containers().dir(&id);
            if lock::is_held(&dir)? {
                lock::wait_released(&dir)?;
            } else {
                // Unmonitored (its monitor died): poll the runtime.
                self.wait_gone(&id, None)?;
            }
        }
    }

    /// `vessel restart [-t]`: stop (if running), then start detached.
    pub fn restart(&self, container: &str, timeout: Duration) -> Result<i32> {
        let id = self.containers().resolve(container)?;
        self.stop(&id, timeout)?;
        match self.start(&id, Attach::Detached)? {
            Outcome::Running(pid) => Ok(pid),
            Outcome::Exited(_) => Ok(0),
        }
    }

    /// `vessel pause`: freeze every process of the container.
    pub fn pause(&self, container: &str) -> Result<()> {
        let record = self.active(container, "pause (it is not running)")?;
        self.freeze(&record.id, true)
    }

    /// `vessel unpause`.
    pub fn unpause(&self, container: &str) -> Result<()> {
        let record = self.active(container, "unpause (it is not running)")?;
        if record.state.status != Status::Paused {
            return Err(EngineError::WrongState {
                id: record.id,
                status: record.state.status.to_string(),
                operation: "unpause (it is not paused)",
            });
        }
        self.freeze(&record.id, false)
    }

    fn freeze(&self, id: &str, frozen: bool) -> Result<()> {
        let rt_err = |source| EngineError::Runtime {
            id: id.to_owned(),
            source: Box::new(source),
        };
        let c = self
            .runtime_container(id)?
            .ok_or_else(|| EngineError::NotFound(id.to_owned()))?;
        if frozen {
            c.pause().map_err(rt_err)?;
        } else {
            c.resume().map_err(rt_err)?;
        }
        self.containers()
            .update(id, |r| {
                if r.state.status.is_active() {
                    r.state.status = if frozen {
                        Status::Paused
                    } else {
                        Status::Running
                    };
                }
                Ok(())
            })
            .map(drop)
    }

    /// `vessel rename OLD NEW`.
    pub fn rename(&self, container: &str, new_name: &str) -> Result<()> {
        let id = self.containers().resolve(container)?;
        let name = crate::names::validate_name(new_name)?;
        self.containers().rename(&id, &name)
    }

    /// `vessel top`: the container's processes.
    pub fn top(&self, container: &str) -> Result<Vec<ProcessInfo>> {
        let record = self.active(container, "list processes (it is not running)")?;
        let c = self
            .runtime_container(&record.id)?
            .ok_or_else(|| EngineError::NotFound(record.id.clone()))?;
        let pids = c.pids().map_err(|source| EngineError::Runtime {
            id: record.id.clone(),
            source: Box::new(source),
        })?;
        Ok(pids.into_iter().filter_map(process_info).collect())
    }

    /// `vessel stats --no-stream`: the container's cgroup statistics.
    pub fn stats(&self, container: &str) -> Result<(ContainerRecord, vessel_cgroups::Stats)> {
        let record = self.active(container, "report statistics (it is not running)")?;
        let c = self
            .runtime_container(&record.id)?
            .ok_or_else(|| EngineError::NotFound(record.id.clone()))?;
        let stats = c.stats().map_err(|source| EngineError::Runtime {
            id: record.id.clone(),
            source: Box::new(source),
        })?;
        Ok((record, stats))
    }
}

/// `SIGTERM`, `TERM`, `term` or `15`.
pub fn parse_signal(s: &str) -> Result<Signal> {
    let bad = || EngineError::InvalidOption {
        option: "--signal",
        reason: format!("{s:?} is not a signal"),
    };
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| bad());
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse().map_err(|_| bad())
}

fn process_info(pid: i32) -> Option<ProcessInfo> {
    let proc = Path::new("/proc").join(pid.to_string());
    let status = std::fs::read_to_string(proc.join("status")).ok()?;
    let field = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| v.split_whitespace().next().unwrap_or("").to_owned())
    };
    let ppid = field("PPid:")?.parse().ok()?;
    let uid = field("Uid:")?.parse().ok()?;
    let cmdline = std::fs::read(proc.join("cmdline")).unwrap_or_default();
    let cmd = if cmdline.is_empty() {
        format!("[{}]", field("Name:").unwrap_or_default())
    } else {
        cmdline
            .split(|&b| b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    };
    Some(ProcessInfo {
        pid,
        ppid,
        uid,
        cmd,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_by_name_and_number() {
        assert_eq!(parse_signal("TERM").unwrap(), Signal::SIGTERM);
        assert_eq!(parse_signal("sigkill").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("9").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("SIGUSR1").unwrap(), Signal::SIGUSR1);
        for bad in ["", "NOPE", "99", "-1"] {
            let e = parse_signal(bad).unwrap_err().to_string();
            assert!(e.contains("not a signal"), "{e}");
        }
    }

    #[test]
    fn process_info_of_this_process() {
        let me = process_info(std::process::id() as i32).unwrap();
        assert_eq!(me.uid, nix::unistd::getuid().as_raw());
        assert!(!me.cmd.is_empty());
        assert!(process_info(i32::MAX).is_none());
    }
}
