//! `vessel cp`: files between a container and the host, or a tar stream.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use vessel_engine::copy::{CopyOptions, Endpoint};
use vessel_engine::{Engine, EngineConfig};

/// `vessel cp`.
#[derive(Debug, Args)]
pub struct CpArgs {
    /// Keep uid/gid of the source when copying into the container.
    #[arg(short = 'a', long)]
    pub archive: bool,
    /// Follow a symlink SRC.
    #[arg(short = 'L', long)]
    pub follow_link: bool,
    /// CONTAINER:SRC_PATH, a host path, or - (a tar on stdin).
    pub src: String,
    /// CONTAINER:DEST_PATH, a host path, or - (a tar on stdout).
    pub dest: String,
}

/// Run `vessel cp`.
pub fn cp(config: &EngineConfig, a: &CpArgs) -> Result<ExitCode> {
    use std::io::IsTerminal;
    let engine = Engine::open(config.clone()).context("cannot open the store")?;
    let (src, dest) = (Endpoint::parse(&a.src), Endpoint::parse(&a.dest));
    if dest == Endpoint::Stdio && std::io::stdout().is_terminal() {
        anyhow::bail!("Refusing to write a tar to a terminal: redirect stdout");
    }
    let opts = CopyOptions {
        archive: a.archive,
        follow_link: a.follow_link,
    };
    engine.copy(&src, &dest, opts)?;
    Ok(ExitCode::SUCCESS)
}
