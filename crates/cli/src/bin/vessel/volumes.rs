//! `vessel volume create|ls|inspect|rm|prune`: argument parsing and output
//! over the engine's volume store; and the `Mounts` of `vessel inspect`.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use vessel_engine::mounts::{source_path, MountKind, MountPoint};
use vessel_engine::volumes::VolumeRecord;
use vessel_engine::{Engine, EngineConfig};

use crate::format::{human_size, print_json, print_table, render};

/// `vessel volume …`.
#[derive(Debug, Subcommand)]
pub enum VolumeCommand {
    /// Create a volume (a random name when none is given).
    Create(CreateArgs),
    /// List volumes.
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Show volumes' details as JSON.
    Inspect(InspectArgs),
    /// Remove volumes (not while a container uses them).
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Remove unused anonymous volumes (-a: every unused volume).
    Prune(PruneArgs),
}

/// `vessel volume create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Set a label (KEY=VALUE).
    #[arg(short = 'l', long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Volume driver (only "local").
    #[arg(short = 'd', long, default_value = "local")]
    pub driver: String,
    /// Driver options (not supported: vessel's volumes are plain directories).
    #[arg(short = 'o', long = "opt", value_name = "KEY=VALUE")]
    pub opts: Vec<String>,
    /// The name.
    pub name: Option<String>,
}

/// `vessel volume ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// Only names.
    #[arg(short, long)]
    pub quiet: bool,
    /// json, table or a Go-style template ({{.Name}}, {{.Driver}}, {{.Mountpoint}}, ...).
    #[arg(long)]
    pub format: Option<String>,
    /// dangling=true|false, name=SUBSTRING, label=KEY[=VALUE].
    #[arg(short, long)]
    pub filter: Vec<String>,
}

/// `vessel volume inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// json or a Go-style template.
    #[arg(short, long)]
    pub format: Option<String>,
    /// Volumes.
    #[arg(required = true)]
    pub names: Vec<String>,
}

/// `vessel volume rm`.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// No error for a volume that does not exist.
    #[arg(short, long)]
    pub force: bool,
    /// Volumes.
    #[arg(required = true)]
    pub names: Vec<String>,
}

/// `vessel volume prune`.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Every unused volume, not only anonymous ones.
    #[arg(short, long)]
    pub all: bool,
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub force: bool,
}

fn labels(list: &[String]) -> BTreeMap<String, String> {
    list.iter()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or((l, ""));
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

/// docker's `volume inspect` document.
fn volume_json(engine: &Engine, v: &VolumeRecord) -> Value {
    let mut labels: serde_json::Map<String, Value> = v
        .labels
        .iter()
        .map(|(k, x)| (k.clone(), json!(x)))
        .collect();
    if v.anonymous {
        labels.insert("com.docker.volume.anonymous".into(), json!(""));
    }
    json!({
        "CreatedAt": v.created,
        "Driver": v.driver,
        "Labels": labels,
        "Mountpoint": engine.volumes().data_dir(&v.name),
        "Name": v.name,
        "Options": {},
        "Scope": "local",
    })
}

/// docker's `Mounts` of a container in `vessel inspect`.
pub fn mounts_json(engine: &Engine, mounts: &[MountPoint]) -> Value {
    mounts
        .iter()
        .map(|m| {
            let mut j = json!({
                "Type": match m.kind { MountKind::Bind => "bind", MountKind::Volume => "volume" },
                "Source": source_path(engine.volumes(), m),
                "Destination": m.destination,
                "Mode": m.mode(),
                "RW": !m.read_only,
                "Propagation": m.propagation(),
            });
            if m.kind == MountKind::Volume {
                j["Name"] = json!(m.source);
                j["Driver"] = json!("local");
            }
            j
        })
        .collect()
}

/// Run `vessel volume …`.
pub fn volume(config: &EngineConfig, cmd: VolumeCommand) -> Result<ExitCode> {
    let engine = Engine::open(config.clone()).context("cannot open the store")?;
    match cmd {
        VolumeCommand::Create(a) => {
            if a.driver != "local" {
                bail!(
                    "Invalid option --driver: {:?} (the only driver is \"local\")",
                    a.driver
                );
            }
            if !a.opts.is_empty() {
                bail!("Invalid option --opt: {:?}: driver options are not supported (vessel's volumes are plain directories)", a.opts);
            }
            let v = engine.volume_create(a.name.as_deref(), &labels(&a.labels))?;
            println!("{}", v.name);
        }
        VolumeCommand::Ls(a) => ls(&engine, &a)?,
        VolumeCommand::Inspect(a) => {
            let mut docs = Vec::new();
            let mut failed = false;
            for n in &a.names {
                match engine.volume_inspect(n) {
                    Ok(v) => docs.push(volume_json(&engine, &v)),
                    Err(e) => {
                        eprintln!("vessel: {:#}", anyhow::Error::from(e));
                        failed = true;
                    }
                }
            }
            match a.format.as_deref() {
                None | Some("json") => print_json(&Value::Array(docs))?,
                Some(t) => {
                    for d in &docs {
                        println!("{}", render(t, d)?);
                    }
                }
            }
            if failed {
                return Ok(ExitCode::FAILURE);
            }
        }
        VolumeCommand::Rm(a) => {
            let mut failed = false;
            for n in &a.names {
                match engine.volume_remove(n, a.force) {
                    Ok(()) => println!("{n}"),
                    Err(e) => {
                        eprintln!("vessel: {:#}", anyhow::Error::from(e));
                        failed = true;
                    }
                }
            }
            if failed {
                return Ok(ExitCode::FAILURE);
            }
        }
        VolumeCommand::Prune(a) => {
            let warning = if a.all {
                "WARNING! This will remove all local volumes not used by at least one container."
            } else {
                "WARNING! This will remove anonymous local volumes not used by at least one container."
            };
            if !a.force && !crate::images::confirm(warning)? {
                return Ok(ExitCode::SUCCESS);
            }
            let pruned = engine.volume_prune(a.all)?;
            if !pruned.names.is_empty() {
                println!("Deleted Volumes:");
                for n in &pruned.names {
                    println!("{n}");
                }
                println!();
            }
            println!("Total reclaimed space: {}", human_size(pruned.bytes));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn ls(engine: &Engine, a: &LsArgs) -> Result<()> {
    let mut rows = Vec::new();
    for u in engine.volume_list()? {
        let mut keep = true;
        for f in &a.filter {
            keep &= match f.split_once('=') {
                Some(("dangling", "true" | "1")) => u.containers.is_empty(),
                Some(("dangling", "false" | "0")) => !u.containers.is_empty(),
                Some(("name", n)) => u.volume.name.contains(n),
                Some(("label", l)) => match l.split_once('=') {
                    Some((k, v)) => u.volume.labels.get(k).is_some_and(|x| x == v),
                    None => u.volume.labels.contains_key(l),
                },
                _ => bail!(
                    "Invalid filter {f:?}: use dangling=true|false, name=NAME or label=KEY[=VALUE]"
                ),
            };
        }
        if keep {
            rows.push(volume_json(engine, &u.volume));
        }
    }
    match a.format.as_deref() {
        Some("json") => print_json(&Value::Array(rows))?,
        Some(t) if t != "table" => {
            for r in &rows {
                println!("{}", render(t, r)?);
            }
        }
        _ if a.quiet => {
            for r in &rows {
                println!("{}", r["Name"].as_str().unwrap_or(""));
            }
        }
        _ => print_table(
            &["DRIVER", "VOLUME NAME"],
            rows.iter()
                .map(|r| {
                    vec![
                        "local".to_owned(),
                        r["Name"].as_str().unwrap_or("").to_owned(),
                    ]
                })
                .collect(),
        ),
    }
    Ok(())
}
