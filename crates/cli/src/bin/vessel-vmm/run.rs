//! Runs the microVM the flags describe and turns its end into an exit code.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{anyhow, Context};
use vessel_cli::vm_args::{Console, RunArgs};
use vessel_vmm::config::file::{self as config_file, LogLevel};
use vessel_vmm::controller::{Controller, ControllerOptions, Start};
use vessel_vmm::logger::Log;
use vessel_vmm::{ConsoleOutput, VmConfig, VmExitReason};

/// Exit code when the guest ends in a way a guest should not (triple fault,
/// crash, halt). VMM and config errors exit with 1, usage errors with 2.
const EXIT_GUEST_FAILED: u8 = 3;

pub fn run(args: &RunArgs) -> anyhow::Result<ExitCode> {
    let (config, log, boot_source) = build_config(args)?;
    let options = ControllerOptions {
        id: args.id.clone(),
        seccomp: !args.no_seccomp,
        api_socket: args.api_sock.clone(),
        // This process exits when the VM ends: let KVM's teardown of the
        // VM finish after it (docs/vmm.md, "Asynchronous teardown").
        async_teardown: !args.no_async_teardown,
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
