//! `vessel-vmm`: one microVM in the foreground, the process behind
//! `vessel vm run`. `vessel` parses its command line and execs this binary
//! with the arguments that followed `vm run`, so that the VMM process maps
//! only the VMM's code: the `vessel` binary also carries the container
//! engine, registry client and builder, and a process running it keeps
//! several MiB more of that binary resident (docs/vmm.md, "The VMM's own
//! binary"; BENCHMARKS.md). It can also be run directly, with the same flags.

#![forbid(unsafe_code)]

mod run;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;
use vessel_cli::vm_args::RunArgs;

/// Run one microVM in the foreground (what `vessel vm run` does).
#[derive(Debug, Parser)]
#[command(name = "vessel-vmm", version)]
struct Cli {
    #[command(flatten)]
    run: RunArgs,
    /// `vessel`'s global flags, which clap also accepts after `vm run`:
    /// taken here so that those arguments parse unchanged; the VMM uses
    /// neither.
    #[arg(long, hide = true)]
    root: Option<OsString>,
    #[arg(long, hide = true)]
    runroot: Option<OsString>,
}

fn main() -> ExitCode {
    // `api_server.process_startup_time_us` in the VMM's metrics counts from here.
    vessel_vmm::metrics::mark_process_start();
    // The kernel named this thread after the binary at exec; it keeps the
    // name the VMM thread had before `vessel` execed vessel-vmm (what `ps`
    // and the VMM's thread list show: vessel, vessel-api, vessel-vcpuN).
    // Naming the calling thread cannot fail with a valid string.
    let _ = nix::sys::prctl::set_name(c"vessel");
    let cli = Cli::parse();
    match run::run(&cli.run) {
        Ok(code) => code,
        Err(e) => {
            // `{:#}` prints the whole chain: what failed, on which path, why.
            // Named `vessel` as the user's command is `vessel vm run`.
            eprintln!("vessel: {e:#}");
            ExitCode::from(1)
        }
    }
}
