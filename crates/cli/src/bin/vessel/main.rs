//! `vessel`: the engine's command line, with docker's and podman's habits.
//! Argument parsing and output only; the work is done by the library crates
//! (`vessel-engine` for containers, `vessel-image` for images,
//! `vessel-registry` for pull/push, `vessel-build` for build, `vessel-vmm`
//! for `vessel vm`, whose `run` execs the `vessel-vmm` binary: see vm.rs).

#![forbid(unsafe_code)]

mod build;
mod commit;
mod containers;
mod cp;
mod create_args;
mod format;
mod images;
mod network;
mod registry;
mod vm;
mod volumes;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use vessel_engine::EngineConfig;

/// Run Linux workloads in containers and microVMs.
#[derive(Debug, Parser)]
#[command(name = "vessel", version)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

/// The flags every subcommand takes (also in vm.rs's `vm run` parser).
#[derive(Debug, clap::Args)]
struct GlobalArgs {
    /// Where images and containers live [default: $VESSEL_ROOT or /var/lib/vessel].
    #[arg(long, global = true, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Where runtime state lives (gone at reboot).
    #[arg(long, global = true, value_name = "DIR", default_value = "/run/vessel")]
    runroot: PathBuf,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create and run a container from an image.
    Run(containers::RunArgs),
    /// Create a container without starting it.
    Create(create_args::CreateArgs),
    /// Start containers.
    Start(containers::StartArgs),
    /// Stop running containers (stop signal, then SIGKILL).
    Stop(containers::StopArgs),
    /// Restart containers.
    Restart(containers::StopArgs),
    /// Send a signal to running containers.
    Kill(containers::KillArgs),
    /// Remove containers.
    Rm(containers::RmArgs),
    /// List containers.
    Ps(containers::PsArgs),
    /// Show a container's output.
    Logs(containers::LogsArgs),
    /// Run a command in a running container.
    Exec(containers::ExecArgs),
    /// Show containers' details as JSON.
    Inspect(containers::InspectArgs),
    /// Block until containers stop; print their exit codes.
    Wait(containers::ContainersArgs),
    /// Show a container's processes.
    Top(containers::TopArgs),
    /// Show containers' resource usage.
    Stats(containers::StatsArgs),
    /// Freeze every process of containers.
    Pause(containers::ContainersArgs),
    /// Thaw paused containers.
    Unpause(containers::ContainersArgs),
    /// Rename a container.
    Rename(containers::RenameArgs),
    /// Create an image from a container's changes.
    Commit(commit::CommitArgs),
    /// List the files a container added, changed or deleted.
    Diff(containers::DiffArgs),
    /// Copy files between a container and the host.
    Cp(cp::CpArgs),
    /// Write a container's filesystem as a tar archive.
    Export(containers::ExportArgs),
    /// Manage images.
    #[command(subcommand)]
    Image(images::ImageCommand),
    /// List images.
    Images(images::ImagesArgs),
    /// Remove images.
    Rmi(images::RmiArgs),
    /// Give an image another name.
    Tag(images::TagArgs),
    /// Load images from an archive (docker save or OCI archive).
    Load(images::LoadArgs),
    /// Save images to an archive.
    Save(images::SaveArgs),
    /// Create an image from a root filesystem tarball.
    Import(images::ImportArgs),
    /// Build an image from a Containerfile.
    Build(build::BuildArgs),
    /// Pull an image from a registry.
    Pull(registry::PullArgs),
    /// Push an image to a registry.
    Push(registry::PushArgs),
    /// Store credentials for a registry.
    Login(registry::LoginArgs),
    /// Remove stored credentials for a registry.
    Logout(registry::LogoutArgs),
    /// Disk usage and clean-up.
    #[command(subcommand)]
    System(images::SystemCommand),
    /// Manage volumes.
    #[command(subcommand)]
    Volume(volumes::VolumeCommand),
    /// Manage networks.
    #[command(subcommand)]
    Network(network::NetworkCommand),
    /// List a container's published ports.
    Port(network::PortArgs),
    /// Plain virtual machines.
    #[command(subcommand)]
    Vm(vm::VmCommand),
}

fn main() -> ExitCode {
    // `vessel vm run` becomes the vessel-vmm process before the whole
    // command tree is built (vm.rs).
    if let Some(e) = vm::exec_if_vm_run() {
        eprintln!("vessel: {e:#}");
        return ExitCode::from(1);
    }
    let cli = Cli::parse();
    let config = EngineConfig {
        root: cli
            .global
            .root
            .unwrap_or_else(|| EngineConfig::default().root),
        run_root: cli.global.runroot,
    };
    let c = &config;
    // docker's exit codes: the container's own, or 125 when vessel failed
    // (126/127 when the command cannot be run); `vessel vm` keeps its own.
    let (result, failure) = match cli.command {
        Command::Run(a) => (containers::run(c, &a), None),
        Command::Create(a) => (containers::create(c, &a), None),
        Command::Start(a) => (containers::start(c, &a), None),
        Command::Stop(a) => (containers::stop(c, &a), None),
        Command::Restart(a) => (containers::restart(c, &a), None),
        Command::Kill(a) => (containers::kill(c, &a), None),
        Command::Rm(a) => (containers::rm(c, &a), None),
        Command::Ps(a) => (containers::ps(c, &a), None),
        Command::Logs(a) => (containers::logs(c, &a), None),
        Command::Exec(a) => (containers::exec(c, &a), None),
        Command::Inspect(a) => (containers::inspect(c, &a), None),
        Command::Wait(a) => (containers::wait(c, &a), None),
        Command::Top(a) => (containers::top(c, &a), None),
        Command::Stats(a) => (containers::stats(c, &a), None),
        Command::Pause(a) => (containers::pause(c, &a), None),
        Command::Unpause(a) => (containers::unpause(c, &a), None),
        Command::Rename(a) => (containers::rename(c, &a), None),
        Command::Commit(a) => (commit::commit(c, &a), None),
        Command::Diff(a) => (containers::diff(c, &a), None),
        Command::Export(a) => (containers::export(c, &a), None),
        Command::Cp(a) => (cp::cp(c, &a), None),
        Command::Image(cmd) => (images::image(c, cmd), Some(1)),
        Command::Images(a) => (images::image(c, images::ImageCommand::Ls(a)), Some(1)),
        Command::Rmi(a) => (images::image(c, images::ImageCommand::Rm(a)), Some(1)),
        Command::Tag(a) => (images::image(c, images::ImageCommand::Tag(a)), Some(1)),
        Command::Load(a) => (images::image(c, images::ImageCommand::Load(a)), Some(1)),
        Command::Save(a) => (images::image(c, images::ImageCommand::Save(a)), Some(1)),
        Command::Import(a) => (images::image(c, images::ImageCommand::Import(a)), Some(1)),
        Command::Build(a) => (build::build(c, a), Some(1)),
        Command::Pull(a) => (registry::pull(&c.root, a), Some(1)),
        Command::Push(a) => (registry::push(&c.root, a), Some(1)),
        Command::Login(a) => (registry::login(a), Some(1)),
        Command::Logout(a) => (registry::logout(a), Some(1)),
        Command::System(cmd) => (images::system(c, cmd), Some(1)),
        Command::Volume(cmd) => (volumes::volume(c, cmd), Some(1)),
        Command::Network(cmd) => (network::network(c, cmd), Some(1)),
        Command::Port(a) => (network::port(c, &a), Some(1)),
        Command::Vm(cmd) => (vm::run(cmd), Some(1)),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            // `{:#}` prints the whole chain: what failed, on which path, why.
            eprintln!("vessel: {e:#}");
            ExitCode::from(failure.unwrap_or_else(|| containers::engine_exit(&e)))
        }
    }
}
