//! `vessel vm …`: plain microVMs.
//!
//! `vessel vm run` is parsed here (help, usage errors and their exit code 2
//! are vessel's), then this process execs `vessel-vmm`, installed next to
//! `vessel`, with the arguments that followed `vm run`: the microVM runs in
//! that small binary, same pid, same stdio, same exit codes, so the VMM
//! does not keep the container engine's code resident (docs/vmm.md, "The
//! VMM's own binary").
//!
//! That parse uses a command tree holding only `vessel vm run` (and the
//! global flags): building vessel's whole tree, some 40 subcommands, was
//! the largest part of the time `vessel` spends before the exec. The tests
//! below check that both trees print the same help and the same errors.

use std::ffi::OsString;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

use anyhow::{anyhow, Context};
use clap::{Parser, Subcommand};
use vessel_cli::vm_args::RunArgs;

use crate::GlobalArgs;

/// The VMM binary's file name, in the directory of `vessel`'s own binary.
const VMM_BINARY: &str = "vessel-vmm";

#[derive(Debug, Subcommand)]
pub enum VmCommand {
    /// Boot one microVM in the foreground; returns when the guest ends.
    Run(RunArgs),
}

/// `vessel` as seen on the way to `vm run`: the whole tree's path to it.
#[derive(Debug, Parser)]
#[command(name = "vessel", version)]
struct VmRunCli {
    #[command(flatten)]
    _global: GlobalArgs,
    #[command(subcommand)]
    _command: VmOnly,
}

#[derive(Debug, Subcommand)]
enum VmOnly {
    #[command(subcommand)]
    Vm(VmCommand),
}

/// When vessel's arguments are `[GLOBAL FLAGS] vm [GLOBAL FLAGS] run …`:
/// checks them (clap exits on help or a usage error) and becomes the VMM.
/// Returns the error if that fails, None for any other command.
pub fn exec_if_vm_run() -> Option<anyhow::Error> {
    let args = args_after_vm_run(std::env::args_os())?;
    // The parsed flags are not used here: vessel-vmm parses the same
    // arguments again with the same definitions.
    VmRunCli::parse();
    Some(match vmm_binary() {
        Ok(binary) => exec_vmm(&binary, args),
        Err(e) => e,
    })
}

/// `vm` reached through the whole command tree (exec_if_vm_run takes every
/// `vm run` first, so this only reports that something is amiss).
pub fn run(cmd: VmCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        VmCommand::Run(_) => Err(anyhow!("Cannot find `vm run` in vessel's arguments")),
    }
}

/// `vessel-vmm` next to the running `vessel` (symbolic links resolved, as
/// /proc/self/exe is).
fn vmm_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("Cannot find the vessel binary's own path")?;
    let dir = exe
        .parent()
        .ok_or_else(|| anyhow!("vessel's own path {} has no directory", exe.display()))?;
    Ok(dir.join(VMM_BINARY))
}

/// Only returns on failure: on success this process becomes the VMM.
fn exec_vmm(binary: &PathBuf, args: Vec<OsString>) -> anyhow::Error {
    let error = Command::new(binary).args(args).exec();
    match error.kind() {
        io::ErrorKind::NotFound => anyhow!(
            "Cannot run the microVM: {} is missing (`vessel vm run` runs the VMM \
             binary {VMM_BINARY} installed next to vessel)",
            binary.display()
        ),
        _ => anyhow::Error::new(error)
            .context(format!("Cannot run the VMM binary {}", binary.display())),
    }
}

/// The arguments after `vm run` in `argv` (program name first), which clap
/// has accepted: only vessel's global flags (`--root DIR`, `--runroot DIR`,
/// or `--flag=DIR`) can come before `vm` and between `vm` and `run`.
/// Those after `run` stay: vessel-vmm accepts them as clap does here.
fn args_after_vm_run(argv: impl IntoIterator<Item = OsString>) -> Option<Vec<OsString>> {
    let mut argv = argv.into_iter().skip(1);
    for word in ["vm", "run"] {
        loop {
            let arg = argv.next()?;
            if arg == "--root" || arg == "--runroot" {
                argv.next()?;
                continue;
            }
            if is_global_with_value(&arg) {
                continue;
            }
            if arg != word {
                return None;
            }
            break;
        }
    }
    Some(argv.collect())
}

fn is_global_with_value(arg: &OsString) -> bool {
    let bytes = arg.as_encoded_bytes();
    bytes.starts_with(b"--root=") || bytes.starts_with(b"--runroot=")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn after(argv: &[&str]) -> Option<Vec<String>> {
        args_after_vm_run(argv.iter().map(OsString::from))
            .map(|v| v.into_iter().map(|a| a.into_string().unwrap()).collect())
    }

    #[test]
    fn finds_the_arguments_after_vm_run() {
        assert_eq!(
            after(&["vessel", "vm", "run", "--kernel", "k", "--cpus", "2"]),
            Some(vec![
                "--kernel".into(),
                "k".into(),
                "--cpus".into(),
                "2".into()
            ])
        );
        assert_eq!(after(&["vessel", "vm", "run"]), Some(vec![]));
    }

    #[test]
    fn skips_global_flags_before_and_between_the_words() {
        // A global flag's value may itself be "vm" or "run".
        assert_eq!(
            after(&[
                "vessel",
                "--root",
                "vm",
                "vm",
                "--runroot=/r",
                "run",
                "--kernel",
                "run"
            ]),
            Some(vec!["--kernel".into(), "run".into()])
        );
        assert_eq!(
            after(&[
                "vessel",
                "--root=/x",
                "vm",
                "--runroot",
                "run",
                "run",
                "--root",
                "/y"
            ]),
            Some(vec!["--root".into(), "/y".into()])
        );
    }

    /// What clap makes of `argv`: the parse's outcome, or the error's
    /// rendered text and exit code.
    fn outcome<P: Parser + std::fmt::Debug>(argv: &[&str]) -> Result<(), (String, i32)> {
        P::try_parse_from(argv)
            .map(drop)
            .map_err(|e| (e.render().to_string(), e.exit_code()))
    }

    #[test]
    fn the_vm_run_tree_parses_as_the_whole_tree_does() {
        let cases: &[&[&str]] = &[
            &["vessel", "vm", "run", "--kernel", "k"],
            &[
                "vessel",
                "--root",
                "/r",
                "vm",
                "--runroot=/q",
                "run",
                "--config-file",
                "c",
            ],
            &[
                "vessel",
                "vm",
                "run",
                "--api-sock",
                "s",
                "--root",
                "/r",
                "--console",
                "none",
            ],
            &["vessel", "vm", "run", "--help"],
            &["vessel", "vm", "run", "-h"],
            &["vessel", "vm", "run"],
            &["vessel", "vm", "run", "--kernel", "k", "--cpus", "0"],
            &["vessel", "vm", "run", "--kernel", "k", "--memory", "huge"],
            &["vessel", "vm", "run", "--kernal", "k"],
            &["vessel", "vm", "run", "--kernel", "k", "--console", "tty"],
            &["vessel", "vm", "run", "--kernel", "k", "extra"],
            &["vessel", "vm", "run", "--kernel", "k", "--kernel", "k2"],
            &["vessel", "vm", "run", "--restore", "s"],
            &[
                "vessel",
                "vm",
                "run",
                "--restore",
                "s",
                "--restore-mem",
                "m",
                "--kernel",
                "k",
            ],
            &["vessel", "vm", "run", "--kernel", "k", "--root"],
            &["vessel", "vm", "run", "--version"],
        ];
        for argv in cases {
            let whole = outcome::<crate::Cli>(argv);
            assert_eq!(outcome::<VmRunCli>(argv), whole, "{argv:?}");
        }
    }

    #[test]
    fn anything_else_is_not_vm_run() {
        assert_eq!(after(&["vessel", "run", "vm"]), None);
        assert_eq!(after(&["vessel", "vm"]), None);
        assert_eq!(after(&["vessel", "--root"]), None);
        assert_eq!(after(&["vessel"]), None);
    }
}
