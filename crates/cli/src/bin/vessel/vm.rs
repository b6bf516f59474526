//! `vessel vm …`: plain microVMs.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, Context};
use clap::{Args, Subcommand};
use vessel_vmm::config::file::{self as config_file, LogLevel};
use vessel_vmm::config::{MAX_MEM_MIB, MAX_VCPUS, MIN_MEM_MIB};
use vessel_vmm::controller::{Controller, ControllerOptions, Start, DEFAULT_ID};
use vessel_vmm::logger::Log;
use vessel_vmm::{ConsoleOutput, VmConfig, VmExitReason};

/// Exit code when the guest ends in a way a guest should not (triple fault,
/// crash, halt). VMM and config errors exit with 1, usage errors with 2.
pub const EXIT_GUEST_FAILED: u8 = 3;

#[derive(Debug, Subcommand)]
pub enum VmCommand {
    /// Boot one microVM in the foreground; returns when the guest ends.
    Run(RunArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Guest kernel: ELF vmlinux (PVH entry when present) or bzImage.
    /// Without it (and without --config-file) the VM waits on --api-sock
    /// for PUT /boot-source and InstanceStart.
    #[arg(long, value_name = "PATH", required_unless_present_any = ["config_file", "api_sock", "restore"])]
    kernel: Option<PathBuf>,
    /// Initrd / initramfs.
    #[arg(long, value_name = "PATH")]
    initrd: Option<PathBuf>,
    /// Kernel command line.
    #[arg(long, value_name = "STR")]
    cmdline: Option<String>,
    /// Number of vCPUs [default: 1].
    #[arg(long, value_name = "N",
          value_parser = clap::value_parser!(u8).range(1..=i64::from(MAX_VCPUS)))]
    cpus: Option<u8>,
    /// Guest memory in MiB [default: 128].
    #[arg(long, value_name = "MiB",
          value_parser = clap::value_parser!(u64).range(MIN_MEM_MIB..=MAX_MEM_MIB))]
    memory: Option<u64>,
    /// Firecracker-format JSON config; the flags above override it.
    #[arg(long, value_name = "FILE")]
    config_file: Option<PathBuf>,
    /// Where the guest's serial console goes: stdio, file:PATH or none.
    #[arg(long, value_name = "SINK", default_value = "stdio", value_parser = parse_console)]
    console: Console,
    /// VMM log file (appended to); overrides the config file's logger.log_path.
    #[arg(long, value_name = "PATH")]
    log: Option<PathBuf>,
    /// Append Firecracker-format metrics (one JSON line per flush) to this
    /// file or named pipe; overrides the config file's metrics.metrics_path.
    #[arg(long, value_name = "PATH")]
    metrics_path: Option<PathBuf>,
    /// Serve Firecracker's REST API on this Unix socket (which must not exist).
    #[arg(long, value_name = "PATH")]
    api_sock: Option<PathBuf>,
    /// The instance id the API reports in GET /.
    #[arg(long, value_name = "ID", default_value = DEFAULT_ID)]
    id: String,
    /// Run the VMM's threads without their seccomp filters.
    #[arg(long)]
    no_seccomp: bool,
    /// Restore the microVM from this snapshot state file (PUT
    /// /snapshot/load's snapshot_path) instead of booting a kernel.
    #[arg(long, value_name = "SNAPSHOT", requires = "restore_mem",
          conflicts_with_all = ["kernel", "config_file", "initrd", "cmdline", "cpus", "memory"])]
    restore: Option<PathBuf>,
    /// The snapshot's guest memory file (mem_backend.backend_path), mapped
    /// privately: it is never written.
    #[arg(long, value_name = "MEMFILE", requires = "restore")]
    restore_mem: Option<PathBuf>,
    /// With --restore: leave the guest paused (resume it with PATCH /vm).
    #[arg(long, requires = "restore")]
    restore_paused: bool,
}

#[derive(Debug, Clone)]
enum Console {
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

pub fn run(cmd: VmCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        VmCommand::Run(args) => run_one(&args),
    }
}

fn run_one(args: &RunArgs) -> anyhow::Result<ExitCode> {
    let (config, log, boot_source) = build_config(args)?;
    let options = ControllerOptions {
        id: args.id.clone(),
        seccomp: !args.no_seccomp,
        api_socket: args.api_sock.clone(),
    };
    // This (main) thread becomes the VMM thread: it runs the event loop and
    // is confined by the VMM seccomp filter once the guest runs.
    let controller = Controller::new(config, boot_source, log, options).stop_on_signals();
    let start = match (&args.restore, &args.restore_mem) {
        (Some(snapshot_path), Some(mem_file_path)) => Start::Restore {
            snapshot_path: snapshot_path.clone(),
            mem_file_path: mem_file_path.clone(),
            resume: !args.restore_paused,
        },
        _ if boot_source => Start::Boot,
        _ => Start::Wait,
    };
    let reason = controller.run_with(start).context("The microVM failed")?;
    if let VmExitReason::Signal(signal) = reason {
        // As a shell reports a process ended by a signal: 128 + its number.
        eprintln!("vessel: stopped by signal {signal}; the microVM's vCPUs were stopped");
        return Ok(ExitCode::from(128 + u8::try_from(signal).unwrap_or(0)));
    }
    if reason.is_clean() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("vessel: the guest ended abnormally: {}", describe(reason));
        Ok(ExitCode::from(EXIT_GUEST_FAILED))
    }
}

fn describe(reason: VmExitReason) -> &'static str {
    match reason {
        VmExitReason::Reset => "reset",
        VmExitReason::PowerOff => "power-off",
        VmExitReason::TripleFault => "triple fault (a vCPU faulted with no way to handle it)",
        VmExitReason::Crash => "crash reported by the guest",
        VmExitReason::Halted => "the boot vCPU halted with nothing to wake it",
        VmExitReason::Signal(_) => "stopped by a signal",
    }
}

/// The config file (if any), then the flags over it; and whether a kernel
/// was given (otherwise the API provides it).
fn build_config(args: &RunArgs) -> anyhow::Result<(VmConfig, Log, bool)> {
    let mut log_path = None;
    let mut level = LogLevel::Info;
    let mut config = match &args.config_file {
        Some(path) => {
            let file = config_file::load(path)
                .and_then(|f| f.to_vm_config().map(|c| (c, f)))
                .with_context(|| format!("Invalid --config-file {}", path.display()))?;
            log_path = file.1.log_path().map(Path::to_path_buf);
            level = file.1.log_level().unwrap_or(level);
            file.0
        }
        None => match (&args.kernel, &args.api_sock) {
            (Some(kernel), _) => VmConfig::new(kernel),
            (None, _) if args.restore.is_some() => VmConfig::new(""),
            (None, Some(_)) => VmConfig::new(""),
            (None, None) => {
                return Err(anyhow!("--kernel, --config-file or --api-sock is required"))
            }
        },
    };
    let boot_source = args.kernel.is_some() || args.config_file.is_some();
    if let Some(kernel) = &args.kernel {
        config.kernel = kernel.clone();
    }
    if let Some(initrd) = &args.initrd {
        config.initrd = Some(initrd.clone());
    }
    if let Some(cmdline) = &args.cmdline {
        config_file::check_cmdline(cmdline).map_err(|e| anyhow!("Invalid --cmdline: {e}"))?;
        config.cmdline = cmdline.clone();
    }
    if let Some(cpus) = args.cpus {
        config.vcpus = cpus;
    }
    if let Some(memory) = args.memory {
        config.memory_mib = memory;
    }
    (config.console, config.console_input) = match &args.console {
        Console::Stdio => (ConsoleOutput::Stdout, true),
        Console::File(path) => (ConsoleOutput::File(path.clone()), false),
        Console::None => (ConsoleOutput::None, false),
    };
    if let Some(path) = &args.metrics_path {
        config.metrics_path = Some(path.clone());
    }
    let log_path = args.log.clone().or(log_path);
    let log = Log::open(log_path.as_deref(), level)?;
    Ok((config, log, boot_source))
}
