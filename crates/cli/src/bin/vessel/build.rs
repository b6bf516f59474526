//! `vessel build`: argument parsing and output only; the work is
//! `vessel_build`'s. Step lines and RUN output go to stdout (stderr with
//! `-q`, which discards RUN output), the image ID to stdout at the end.

use std::collections::BTreeMap;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::Args;
use vessel_build::{BuildOptions, Output};
use vessel_engine::{Engine, EngineConfig, NetworkMode};
use vessel_image::Reference;
use vessel_registry::render::Bars;
use vessel_registry::{Progress, Silent};

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Name (and tag) of the image; may be given several times.
    #[arg(short, long = "tag", value_name = "NAME[:TAG]")]
    tags: Vec<String>,
    /// Containerfile to use [default: CONTEXT/Containerfile, else CONTEXT/Dockerfile].
    #[arg(short, long = "file", value_name = "PATH")]
    file: Option<PathBuf>,
    /// Build argument (KEY=VALUE, or KEY to take it from the environment).
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    build_args: Vec<String>,
    /// Build up to this stage.
    #[arg(long, value_name = "STAGE")]
    target: Option<String>,
    /// Run every step again.
    #[arg(long)]
    no_cache: bool,
    /// Print only the image ID.
    #[arg(short, long)]
    quiet: bool,
    /// Network of RUN containers: host or none.
    #[arg(long, value_name = "MODE", default_value = "host")]
    network: String,
    /// Use HTTPS and verify certificates when pulling base images.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    tls_verify: Option<bool>,
    /// The build context directory.
    #[arg(value_name = "CONTEXT")]
    context: PathBuf,
}

pub fn build(config: &EngineConfig, args: BuildArgs) -> anyhow::Result<ExitCode> {
    let tags = args
        .tags
        .iter()
        .map(|t| Reference::parse(t).with_context(|| format!("invalid tag {t:?}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut build_args = BTreeMap::new();
    for a in &args.build_args {
        match a.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                build_args.insert(k.to_string(), v.to_string());
            }
            None if !a.is_empty() => {
                if let Ok(v) = std::env::var(a) {
                    build_args.insert(a.clone(), v);
                }
            }
            _ => bail!("--build-arg {a:?} is not KEY=VALUE"),
        }
    }
    let network = match args.network.as_str() {
        "host" => NetworkMode::Host,
        "none" => NetworkMode::None,
        n => bail!("--network {n:?}: use host or none"),
    };
    let progress: Arc<dyn Progress> = if args.quiet {
        Arc::new(Silent)
    } else {
        Arc::new(Bars::stderr())
    };
    let opts = BuildOptions {
        context: args.context,
        containerfile: args.file,
        tags,
        build_args,
        target: args.target,
        no_cache: args.no_cache,
        network,
        registry: vessel_registry::Options {
            tls_verify: args.tls_verify,
            progress,
            ..Default::default()
        },
    };
    let stdout = || -> anyhow::Result<std::fs::File> {
        Ok(std::io::stdout()
            .as_fd()
            .try_clone_to_owned()
            .context("cannot dup stdout")?
            .into())
    };
    let mut out = if args.quiet {
        Output {
            log: Box::new(std::io::sink()),
            run: None,
        }
    } else {
        Output {
            log: Box::new(stdout()?),
            run: Some(stdout()?),
        }
    };
    let engine = Engine::open(config.clone())?;
    let built = vessel_build::build(&engine, &opts, &mut out)?;
    println!("{}", built.id);
    Ok(ExitCode::SUCCESS)
}
