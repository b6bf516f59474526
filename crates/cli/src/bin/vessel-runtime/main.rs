//! `vessel-runtime`: an OCI runtime with runc's command line.
//!
//! This binary only parses arguments and prints; the work is done by the
//! `vessel-runtime` library crate. It never starts threads: the library
//! forks, and forking is only sound in a single-threaded process.

mod args;
mod info;
mod log;
mod signal;
mod terminal;
mod update;
mod wait;

use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Parser;
use oci_spec::runtime::{Capability, LinuxCapabilities, Process, User};
use vessel_runtime::cgroup_warmup::{self, Warmup};
use vessel_runtime::{Container, CreateOptions, DeleteOptions, ExecOptions, StateStore};

use args::{Cli, Command, ExecArgs, ListFormat};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            log::error(cli.log.as_deref(), cli.log_format, &e);
            ExitCode::FAILURE
        }
    }
}

/// Commands that put a process of ours inside a container run from an
/// unwritable view of the binary (see `vessel_runtime::sealed_exe`).
fn needs_sealed_exe(cmd: &Command) -> bool {
    matches!(cmd, Command::Create(_) | Command::Run(_) | Command::Exec(_))
}

fn run(cli: &Cli) -> anyhow::Result<i32> {
    if !needs_sealed_exe(&cli.command) {
        return run_command(cli, Warmup::none());
    }
    // First thing, so that the kernel's wait happens while we re-execute
    // and read the bundle (see vessel_runtime::cgroup_warmup).
    let warmup = cgroup_warmup::start();
    if !vessel_runtime::sealed_exe::is_protected() {
        std::fs::create_dir_all(&cli.root)
            .with_context(|| format!("cannot create --root {}", cli.root.display()))?;
        warmup.hand_over();
        let err = vessel_runtime::sealed_exe::reexec_protected(&cli.root);
        return Err(err)
            .context("cannot re-execute vessel-runtime from a read-only view of itself");
    }
    run_command(cli, warmup)
}

/// Run the command; `warmup` is reaped once the container has joined its cgroup.
fn run_command(cli: &Cli, warmup: Warmup) -> anyhow::Result<i32> {
    let store = || StateStore::open(&cli.root);
    match &cli.command {
        Command::Create(a) => {
            let created = Container::create(&store()?, &create_options(cli, a));
            warmup.finish();
            created?;
        }
        Command::Start { id } => Container::load(&store()?, id)?.start()?,
        Command::Run(a) => return run_container(cli, a, warmup),
        Command::State { id } => {
            let c = Container::load(&store()?, id)?;
            println!("{}", serde_json::to_string_pretty(&c.oci_state())?);
        }
        Command::Kill { all, id, signal } => {
            let sig = signal::parse(signal)?;
            Container::load(&store()?, id)?.kill(sig, *all)?;
        }
        Command::Delete { force, id } => {
            let store = store()?;
            match Container::load(&store, id) {
                Ok(c) => c.delete(DeleteOptions { force: *force })?,
                // runc: deleting a missing container with --force succeeds.
                Err(vessel_runtime::RuntimeError::NotFound(_)) if *force => {}
                Err(e) => return Err(e.into()),
            }
        }
        Command::List { format, quiet } => list(&store()?, *format, *quiet)?,
        Command::Exec(a) => return exec(&store()?, &cli.root, a, warmup),
        Command::Ps {
            format,
            id,
            ps_args,
        } => info::ps(&Container::load(&store()?, id)?, *format, ps_args)?,
        Command::Pause { id } => Container::load(&store()?, id)?.pause()?,
        Command::Resume { id } => Container::load(&store()?, id)?.resume()?,
        Command::Update(a) => {
            let r = update::resources(a)?;
            Container::load(&store()?, &a.id)?.update(&r)?;
        }
        Command::Events {
            stats,
            interval,
            id,
        } => info::events(&Container::load(&store()?, id)?, *stats, interval)?,
        Command::Features => println!("{}", serde_json::to_string_pretty(&info::features())?),
        Command::Spec { bundle } => {
            info::write_default_spec(bundle, cli.rootless.as_deref() == Some("true"))?
        }
    }
    Ok(0)
}

fn create_options(cli: &Cli, a: &args::CreateArgs) -> CreateOptions {
    CreateOptions {
        id: a.id.clone(),
        bundle: a.bundle.clone(),
        pid_file: a.pid_file.clone(),
        console_socket: a.console_socket.clone(),
        no_pivot: a.no_pivot,
        systemd_cgroup: cli.systemd_cgroup,
        preserve_fds: a.preserve_fds,
    }
}

fn run_container(cli: &Cli, a: &args::RunArgs, warmup: Warmup) -> anyhow::Result<i32> {
    let store = StateStore::open(&cli.root)?;
    if !a.detach {
        // The init may be our grandchild (when it had to be forked into its
        // pid namespace): become a subreaper so that we can wait for it.
        nix::sys::prctl::set_child_subreaper(true).context("prctl(PR_SET_CHILD_SUBREAPER)")?;
    }
    let mut opts = create_options(cli, &a.create);
    let own_console = if !a.detach && opts.console_socket.is_none() && wants_terminal(&opts.bundle)
    {
        let console = terminal::OwnConsole::bind(&cli.root, &a.create.id)?;
        opts.console_socket = Some(console.path().to_path_buf());
        Some(console)
    } else {
        None
    };
    let created = Container::create(&store, &opts);
    warmup.finish();
    let mut c = created?;
    let master = match own_console {
        Some(console) => match console.receive() {
            Ok(m) => Some(m),
            Err(e) => {
                let _ = c.delete(DeleteOptions { force: true });
                return Err(e);
            }
        },
        None => None,
    };
    if let Err(e) = c.start() {
        let _ = Container::load(&store, &a.create.id)
            .and_then(|c| c.delete(DeleteOptions { force: true }));
        return Err(e.into());
    }
    if a.detach {
        return Ok(0);
    }
    let pid = nix::unistd::Pid::from_raw(c.state.pid);
    wait::forward_signals_to(pid);
    let code = match master {
        Some(m) => terminal::relay(m, pid)?,
        None => wait::wait_exit_code(pid)?,
    };
    Container::load(&store, &a.create.id)?.delete(DeleteOptions { force: true })?;
    Ok(code)
}

/// Whether the bundle's process asks for a terminal (an unreadable bundle
/// is create's to report).
fn wants_terminal(bundle: &std::path::Path) -> bool {
    vessel_runtime::bundle::Bundle::load(bundle)
        .ok()
        .and_then(|b| b.spec.process().as_ref().and_then(|p| p.terminal()))
        .unwrap_or(false)
}

fn list(store: &StateStore, format: ListFormat, quiet: bool) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    for id in store.list()? {
        if let Ok(c) = Container::load(store, &id) {
            rows.push(c.oci_state());
        }
    }
    if quiet {
        for r in &rows {
            println!("{}", r["id"].as_str().unwrap_or(""));
        }
        return Ok(());
    }
    match format {
        ListFormat::Json => println!("{}", serde_json::to_string(&rows)?),
        ListFormat::Table => {
            println!(
                "{:<20} {:<8} {:<10} {:<40} {:<30} OWNER",
                "ID", "PID", "STATUS", "BUNDLE", "CREATED"
            );
            for r in rows {
                println!(
                    "{:<20} {:<8} {:<10} {:<40} {:<30} {}",
                    r["id"].as_str().unwrap_or(""),
                    r["pid"],
                    r["status"].as_str().unwrap_or(""),
                    r["bundle"].as_str().unwrap_or(""),
                    r["created"].as_str().unwrap_or(""),
                    r["owner"].as_str().unwrap_or("")
                );
            }
        }
    }
    Ok(())
}

fn exec(
    store: &StateStore,
    cli_root: &std::path::Path,
    a: &ExecArgs,
    warmup: Warmup,
) -> anyhow::Result<i32> {
    let c = Container::load(store, &a.id)?;
    let process = exec_process(&c, a)?;
    if !a.detach {
        nix::sys::prctl::set_child_subreaper(true).context("prctl(PR_SET_CHILD_SUBREAPER)")?;
    }
    let own_console =
        if !a.detach && a.console_socket.is_none() && process.terminal().unwrap_or(false) {
            Some(terminal::OwnConsole::bind(cli_root, &a.id)?)
        } else {
            None
        };
    let opts = ExecOptions {
        process,
        detach: a.detach,
        pid_file: a.pid_file.clone(),
        console_socket: match &own_console {
            Some(c) => Some(c.path().to_path_buf()),
            None => a.console_socket.clone(),
        },
        preserve_fds: a.preserve_fds,
    };
    let started = vessel_runtime::exec::exec(&c, &opts);
    warmup.finish();
    let pid = started?;
    if a.detach {
        return Ok(0);
    }
    wait::forward_signals_to(pid);
    match own_console {
        Some(console) => terminal::relay(console.receive()?, pid),
        None => wait::wait_exit_code(pid),
    }
}

/// The process to exec: from --process, or from the container's own process
/// with the command line's overrides (as runc does).
fn exec_process(c: &Container, a: &ExecArgs) -> anyhow::Result<Process> {
    if let Some(path) = &a.process {
        let data = std::fs::read(path)
            .with_context(|| format!("cannot read --process {}", path.display()))?;
        let de = &mut serde_json::Deserializer::from_slice(&data);
        let p: Process = serde::Deserialize::deserialize(de)
            .with_context(|| format!("invalid process JSON {}", path.display()))?;
        return Ok(p);
    }
    if a.command.is_empty() {
        bail!("exec needs a command or --process FILE");
    }
    let spec = c.spec()?;
    let mut p = spec.process().clone().unwrap_or_default();
    p.set_args(Some(a.command.clone()));
    p.set_terminal(Some(a.tty));
    let mut env = p.env().clone().unwrap_or_default();
    for e in &a.env {
        let key = e.split('=').next().unwrap_or("");
        env.retain(|x| x.split('=').next() != Some(key));
        env.push(e.clone());
    }
    p.set_env(Some(env));
    if let Some(cwd) = &a.cwd {
        p.set_cwd(cwd.clone());
    }
    if let Some(u) = &a.user {
        let (uid, gid) = match u.split_once(':') {
            Some((u, g)) => (
                u.parse().context("--user uid")?,
                g.parse().context("--user gid")?,
            ),
            None => (u.parse().context("--user uid")?, 0),
        };
        let mut user = User::default();
        user.set_uid(uid);
        user.set_gid(gid);
        p.set_user(user);
    }
    if !a.additional_gids.is_empty() {
        let mut user = p.user().clone();
        user.set_additional_gids(Some(a.additional_gids.clone()));
        p.set_user(user);
    }
    if !a.cap.is_empty() {
        let mut caps = p
            .capabilities()
            .clone()
            .unwrap_or_else(LinuxCapabilities::default);
        for name in &a.cap {
            let cap: Capability = serde_json::from_value(serde_json::Value::String(name.clone()))
                .with_context(|| format!("unknown capability {name:?}"))?;
            let add = |set: &Option<oci_spec::runtime::Capabilities>| {
                let mut s = set.clone().unwrap_or_default();
                s.insert(cap);
                Some(s)
            };
            caps.set_bounding(add(caps.bounding()));
            caps.set_effective(add(caps.effective()));
            caps.set_permitted(add(caps.permitted()));
        }
        p.set_capabilities(Some(caps));
    }
    if a.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    Ok(p)
}
