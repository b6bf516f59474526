//! The flags of `vessel vm run` (= the flags of `vessel-vmm`).

use std::path::PathBuf;

use clap::Args;
use vessel_vmm::config::{MAX_MEM_MIB, MAX_VCPUS, MIN_MEM_MIB};
use vessel_vmm::controller::DEFAULT_ID;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Guest kernel: ELF vmlinux (PVH entry when present) or bzImage.
    /// Without it (and without --config-file) the VM waits on --api-sock
    /// for PUT /boot-source and InstanceStart.
    #[arg(long, value_name = "PATH", required_unless_present_any = ["config_file", "api_sock", "restore"])]
    pub kernel: Option<PathBuf>,
    /// Initrd / initramfs.
    #[arg(long, value_name = "PATH")]
    pub initrd: Option<PathBuf>,
    /// Kernel command line.
    #[arg(long, value_name = "STR")]
    pub cmdline: Option<String>,
    /// Number of vCPUs [default: 1].
    #[arg(long, value_name = "N",
          value_parser = clap::value_parser!(u8).range(1..=i64::from(MAX_VCPUS)))]
    pub cpus: Option<u8>,
    /// Guest memory in MiB [default: 128].
    #[arg(long, value_name = "MiB",
          value_parser = clap::value_parser!(u64).range(MIN_MEM_MIB..=MAX_MEM_MIB))]
    pub memory: Option<u64>,
    /// Firecracker-format JSON config; the flags above override it.
    #[arg(long, value_name = "FILE")]
    pub config_file: Option<PathBuf>,
    /// Where the guest's serial console goes: stdio, file:PATH or none.
    #[arg(long, value_name = "SINK", default_value = "stdio", value_parser = parse_console)]
    pub console: Console,
    /// VMM log file (appended to); overrides the config file's logger.log_path.
    #[arg(long, value_name = "PATH")]
    pub log: Option<PathBuf>,
    /// Append Firecracker-format metrics (one JSON line per flush) to this
    /// file or named pipe; overrides the config file's metrics.metrics_path.
    #[arg(long, value_name = "PATH")]
    pub metrics_path: Option<PathBuf>,
    /// Serve Firecracker's REST API on this Unix socket (which must not exist).
    #[arg(long, value_name = "PATH")]
    pub api_sock: Option<PathBuf>,
    /// The instance id the API reports in GET /.
    #[arg(long, value_name = "ID", default_value = DEFAULT_ID)]
    pub id: String,
    /// Run the VMM's threads without their seccomp filters.
    #[arg(long)]
    pub no_seccomp: bool,
    /// Destroy the VM in the VMM's own exit instead of in a helper task
    /// that finishes after it (see docs/vmm.md, "Asynchronous teardown").
    #[arg(long)]
    pub no_async_teardown: bool,
    /// Restore the microVM from this snapshot state file (PUT
    /// /snapshot/load's snapshot_path) instead of booting a kernel.
    #[arg(long, value_name = "SNAPSHOT", requires = "restore_mem",
          conflicts_with_all = ["kernel", "config_file", "initrd", "cmdline", "cpus", "memory"])]
    pub restore: Option<PathBuf>,
    /// The snapshot's guest memory file (mem_backend.backend_path), mapped
    /// privately: it is never written.
    #[arg(long, value_name = "MEMFILE", requires = "restore")]
    pub restore_mem: Option<PathBuf>,
    /// With --restore: leave the guest paused (resume it with PATCH /vm).
    #[arg(long, requires = "restore")]
    pub restore_paused: bool,
}

/// `--console`: where the guest's serial output goes.
#[derive(Debug, Clone)]
pub enum Console {
    Stdio,
    File(PathBuf),
    None,
}

fn parse_console(s: &str) -> Result<Console, String> {
    match s {
        "stdio" => Ok(Console::Stdio),
        "none" => Ok(Console::None),
        _ => match s.strip_prefix("file:") {
            Some("") => Err("file: needs a path (file:PATH)".into()),
            Some(path) => Ok(Console::File(path.into())),
            None => Err(format!("expected stdio, file:PATH or none, got {s:?}")),
        },
    }
}
