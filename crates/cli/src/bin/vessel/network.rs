//! `vessel network create|ls|inspect|rm|connect|disconnect|prune`, `vessel
//! port`, and the network parts of `ps` (PORTS) and `inspect`
//! (NetworkSettings).

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use vessel_engine::network::NetworkCreate;
use vessel_engine::{ContainerRecord, Engine, EngineConfig, NetworkMode};
use vessel_net::{Endpoint, Network};

use crate::format::{print_json, print_table, render, since, unix_time};

/// `vessel network …`.
#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Create a bridge network.
    Create(CreateArgs),
    /// List networks.
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Show networks' details as JSON.
    Inspect(InspectArgs),
    /// Remove networks.
    #[command(alias = "remove")]
    Rm(NamesArgs),
    /// Connect a container to a network.
    Connect(ConnectArgs),
    /// Disconnect a container from a network.
    Disconnect(ConnectArgs),
    /// Remove every user-defined network no container is connected to.
    Prune(PruneArgs),
}

/// `vessel network create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Subnet in CIDR notation (default: a free /24 of 10.90.0.0/16).
    #[arg(long)]
    pub subnet: Option<String>,
    /// Gateway (the bridge's address; default: the subnet's first).
    #[arg(long)]
    pub gateway: Option<String>,
    /// No outbound access: containers reach each other and the host only.
    #[arg(long)]
    pub internal: bool,
    /// Driver (only bridge).
    #[arg(short = 'd', long, default_value = "bridge")]
    pub driver: String,
    /// The network's name.
    pub name: String,
}

/// `vessel network ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// Only the names.
    #[arg(short, long)]
    pub quiet: bool,
    /// Go template or `json`.
    #[arg(long)]
    pub format: Option<String>,
}

/// `vessel network inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Go template.
    #[arg(short, long)]
    pub format: Option<String>,
    /// Networks (name or id).
    #[arg(required = true)]
    pub networks: Vec<String>,
}

/// Networks by name.
#[derive(Debug, Args)]
pub struct NamesArgs {
    /// Networks (name or id).
    #[arg(required = true)]
    pub networks: Vec<String>,
}

/// `vessel network connect|disconnect NETWORK CONTAINER`.
#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// The network.
    pub network: String,
    /// The container.
    pub container: String,
}

/// `vessel network prune`.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Do not ask (vessel never asks; accepted for docker's scripts).
    #[arg(short, long)]
    pub force: bool,
}

/// `vessel port CONTAINER [PORT[/PROTO]]`.
#[derive(Debug, Args)]
pub struct PortArgs {
    /// The container.
    pub container: String,
    /// Only this container port.
    pub port: Option<String>,
}

fn open(config: &EngineConfig) -> Result<Engine> {
    Engine::open(config.clone()).context("cannot open the store")
}

fn network_json(n: &Network, endpoints: &[Endpoint]) -> Value {
    let containers: serde_json::Map<String, Value> = endpoints
        .iter()
        .map(|e| {
            (
                e.container.clone(),
                json!({
                    "Name": e.container_name,
                    "MacAddress": e.mac,
                    "IPv4Address": format!("{}/{}", e.ip, n.subnet.prefix()),
                    "Interface": e.interface,
                }),
            )
        })
        .collect();
    json!({
        "Name": n.name,
        "Id": n.id,
        "Created": n.created,
        "Driver": n.driver,
        "Internal": n.internal,
        "IPAM": {"Driver": "default", "Config": [{"Subnet": n.subnet.to_string(), "Gateway": n.gateway.to_string()}]},
        "Options": {"com.docker.network.bridge.name": n.bridge},
        "Containers": containers,
    })
}

/// `vessel network …`.
pub fn network(config: &EngineConfig, cmd: NetworkCommand) -> Result<ExitCode> {
    let engine = open(config)?;
    match cmd {
        NetworkCommand::Create(a) => {
            if a.driver != "bridge" {
                anyhow::bail!("Invalid option --driver: {:?} (only bridge)", a.driver);
            }
            let n = engine.network_create(&NetworkCreate {
                name: a.name,
                subnet: a.subnet,
                gateway: a.gateway,
                internal: a.internal,
            })?;
            println!("{}", n.id);
        }
        NetworkCommand::Ls(a) => {
            let all = engine.networks()?;
            if a.quiet {
                for n in &all {
                    println!("{}", n.name);
                }
            } else if let Some(t) = a.format.as_deref() {
                for n in &all {
                    let v = network_json(n, &[]);
                    if t == "json" {
                        println!("{v}");
                    } else {
                        println!("{}", render(t, &v)?);
                    }
                }
            } else {
                let rows = all
                    .iter()
                    .map(|n| {
                        vec![
                            n.id[..12].to_owned(),
                            n.name.clone(),
                            n.driver.clone(),
                            n.subnet.to_string(),
                            if n.created.is_empty() {
                                String::new()
                            } else {
                                since(unix_time(&n.created))
                            },
                        ]
                    })
                    .collect();
                print_table(&["NETWORK ID", "NAME", "DRIVER", "SUBNET", "CREATED"], rows);
            }
        }
        NetworkCommand::Inspect(a) => {
            let mut docs = Vec::new();
            for name in &a.networks {
                let (n, eps) = engine.network_inspect(name)?;
                docs.push(network_json(&n, &eps));
            }
            match a.format.as_deref() {
                None => print_json(&Value::Array(docs))?,
                Some(t) => {
                    for d in &docs {
                        println!("{}", render(t, d)?);
                    }
                }
            }
        }
        NetworkCommand::Rm(a) => {
            let mut failed = None;
            for name in &a.networks {
                match engine.network_remove(name) {
                    Ok(n) => println!("{n}"),
                    Err(e) => {
                        eprintln!("vessel: {:#}", anyhow::Error::from(e));
                        failed = Some(ExitCode::from(1));
                    }
                }
            }
            if let Some(code) = failed {
                return Ok(code);
            }
        }
        NetworkCommand::Connect(a) => engine.network_connect(&a.network, &a.container)?,
        NetworkCommand::Disconnect(a) => engine.network_disconnect(&a.network, &a.container)?,
        NetworkCommand::Prune(_) => {
            for n in engine.network_prune()? {
                println!("{n}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `vessel port`: `80/tcp -> 0.0.0.0:8080`, one line per mapping.
pub fn port(config: &EngineConfig, a: &PortArgs) -> Result<ExitCode> {
    let engine = open(config)?;
    let r = engine.inspect(&a.container)?;
    let eps = engine.endpoints(&r.id)?;
    let wanted = a.port.as_deref().map(|p| {
        if p.contains('/') {
            p.to_owned()
        } else {
            format!("{p}/tcp")
        }
    });
    let mut found = false;
    for p in eps.iter().flat_map(|e| &e.ports) {
        let key = format!("{}/{}", p.container_port, p.protocol.as_str());
        if wanted.as_ref().is_some_and(|w| *w != key) {
            continue;
        }
        found = true;
        if wanted.is_some() {
            println!("{}:{}", p.host_ip, p.host_port);
        } else {
            println!("{key} -> {}:{}", p.host_ip, p.host_port);
        }
    }
    if let (Some(w), false) = (wanted, found) {
        anyhow::bail!("No public port '{w}' published for {}", a.container);
    }
    Ok(ExitCode::SUCCESS)
}

/// `ps`'s PORTS column: `0.0.0.0:8080->80/tcp, …`.
pub fn ports_text(engine: &Engine, r: &ContainerRecord) -> String {
    engine
        .endpoints(&r.id)
        .unwrap_or_default()
        .iter()
        .flat_map(|e| &e.ports)
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `inspect`'s NetworkSettings, as docker shows them: the primary
/// network's address at the top, every network under `Networks`, the
/// published ports under `Ports`.
pub fn settings_json(engine: &Engine, r: &ContainerRecord) -> Value {
    let eps = engine.endpoints(&r.id).unwrap_or_default();
    let state = engine.network_store().read().unwrap_or_default();
    let gateway = |e: &Endpoint| {
        state
            .network(&e.network)
            .map(|n| (n.gateway.to_string(), n.subnet.prefix()))
            .unwrap_or_default()
    };
    let mut ports = serde_json::Map::new();
    for spec in &r.config.ports {
        let key = format!("{}/{}", spec.container_port, spec.protocol.as_str());
        ports.insert(key, Value::Null);
    }
    for p in eps.iter().flat_map(|e| &e.ports) {
        let key = format!("{}/{}", p.container_port, p.protocol.as_str());
        ports.insert(
            key,
            json!([{"HostIp": p.host_ip.to_string(), "HostPort": p.host_port.to_string()}]),
        );
    }
    let networks: serde_json::Map<String, Value> = eps
        .iter()
        .map(|e| {
            let (gw, prefix) = gateway(e);
            (
                e.network.clone(),
                json!({
                    "IPAddress": e.ip.to_string(),
                    "IPPrefixLen": prefix,
                    "Gateway": gw,
                    "MacAddress": e.mac,
                    "EndpointID": e.veth,
                }),
            )
        })
        .collect();
    let primary = eps.first();
    let (gw, prefix) = primary.map(gateway).unwrap_or_default();
    json!({
        "IPAddress": primary.map(|e| e.ip.to_string()).unwrap_or_default(),
        "IPPrefixLen": prefix,
        "Gateway": gw,
        "MacAddress": primary.map(|e| e.mac.clone()).unwrap_or_default(),
        "Ports": ports,
        "SandboxKey": match r.config.network {
            NetworkMode::None | NetworkMode::Bridge if r.state.status.is_active() =>
                engine.netns_path(&r.id).display().to_string(),
            _ => String::new(),
        },
        "Networks": networks,
    })
}

/// `--network`'s value: `bridge`, `none`, `host`, `container:X` or a
/// network's name.
pub fn parse_mode(s: &str) -> Result<(NetworkMode, Vec<String>, Option<String>)> {
    Ok(match s {
        "none" => (NetworkMode::None, Vec::new(), None),
        "host" => (NetworkMode::Host, Vec::new(), None),
        "" | "default" | "bridge" => (NetworkMode::Bridge, Vec::new(), None),
        other => match other.strip_prefix("container:") {
            Some("") => anyhow::bail!("Invalid option --network: container: needs a name or id"),
            Some(c) => (NetworkMode::Container, Vec::new(), Some(c.to_owned())),
            None => (NetworkMode::Bridge, vec![other.to_owned()], None),
        },
    })
}
