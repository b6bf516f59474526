//! `vessel`: the engine's command line. Argument parsing and output only;
//! the work is done by the library crates (`vessel-vmm` for `vessel vm`).

#![forbid(unsafe_code)]

mod vm;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Run Linux workloads in containers and microVMs.
#[derive(Debug, Parser)]
#[command(name = "vessel", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Plain virtual machines.
    #[command(subcommand)]
    Vm(vm::VmCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Vm(cmd) => vm::run(cmd),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            // `{:#}` prints the whole chain: what failed, on which path, why.
            eprintln!("vessel: {e:#}");
            ExitCode::FAILURE
        }
    }
}
