//! `vessel run/create/start/stop/restart/kill/rm/ps/logs/exec/inspect/wait/
//! top/stats/pause/unpause/rename`: argument parsing and output over
//! `vessel_engine::Engine`.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use serde_json::{json, Value};
use vessel_engine::exec::ExecRequest;
use vessel_engine::logs::{LogReader, Stream};
use vessel_engine::record::RestartPolicy;
use vessel_engine::tty::RawMode;
use vessel_engine::{
    Attach, ContainerRecord, Engine, EngineConfig, EngineError, Outcome, Status, Stdio,
};

use crate::create_args::CreateArgs;
use crate::format::{ellipsis, print_json, print_table, render, since, unix_time};

/// `vessel run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Run in the background and print the container's id.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Forward the signals the command receives to the container.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub sig_proxy: bool,
    #[command(flatten)]
    pub create: CreateArgs,
}

/// `vessel start`.
#[derive(Debug, Args)]
pub struct StartArgs {
    /// Attach to the container's output and wait for it.
    #[arg(short = 'a', long)]
    pub attach: bool,
    /// Attach the container's stdin.
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Containers.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `vessel stop` / `restart`.
#[derive(Debug, Args)]
pub struct StopArgs {
    /// Seconds to wait before killing the container.
    #[arg(short = 't', long = "time", alias = "timeout", default_value_t = 10)]
    pub time: u64,
    /// Containers.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `vessel kill`.
#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal to send.
    #[arg(short = 's', long, default_value = "KILL")]
    pub signal: String,
    /// Containers.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `vessel rm`.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// Kill and remove a running container.
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Remove the container's anonymous volumes too.
    #[arg(short = 'v', long)]
    pub volumes: bool,
    /// Containers.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// Commands over a list of containers (`pause`, `unpause`, `wait`, `inspect`).
#[derive(Debug, Args)]
pub struct ContainersArgs {
    /// Containers.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `vessel inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Format: json (default) or a Go template such as {{.State.Status}}.
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    /// Containers.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `vessel ps`.
#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show all containers (default: running ones).
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only ids.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Do not truncate ids and commands.
    #[arg(long)]
    pub no_trunc: bool,
    /// The latest container only.
    #[arg(short = 'l', long)]
    pub latest: bool,
    /// The last N containers.
    #[arg(short = 'n', long)]
    pub last: Option<usize>,
    /// table (default), json, or a Go template.
    #[arg(long)]
    pub format: Option<String>,
    /// Filters: status=, name=, id=, ancestor=, exited=.
    #[arg(short = 'f', long)]
    pub filter: Vec<String>,
}

/// `vessel logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Follow the output until the container stops.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Only the last N lines ("all" for every line).
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show timestamps.
    #[arg(short = 't', long)]
    pub timestamps: bool,
    /// The container.
    pub container: String,
}

/// `vessel exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Keep STDIN open.
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Run in the background.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Environment variables.
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Working directory.
    #[arg(short = 'w', long)]
    pub workdir: Option<String>,
    /// User (name|uid[:group|gid]).
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Every capability.
    #[arg(long)]
    pub privileged: bool,
    /// The container, then the command and its arguments (one list, so
    /// that everything after the container belongs to the command).
    #[arg(value_name = "CONTAINER COMMAND [ARG...]", required = true, num_args = 2..,
          trailing_var_arg = true, allow_hyphen_values = true)]
    pub container_and_command: Vec<String>,
}

/// `vessel stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// One sample, then exit (the only mode so far).
    #[arg(long)]
    pub no_stream: bool,
    /// table (default) or json.
    #[arg(long)]
    pub format: Option<String>,
    /// Containers (default: every running one).
    pub containers: Vec<String>,
}

/// `vessel rename`.
#[derive(Debug, Args)]
pub struct RenameArgs {
    /// The container.
    pub container: String,
    /// Its new name.
    pub new_name: String,
}

/// `vessel top`.
#[derive(Debug, Args)]
pub struct TopArgs {
    /// The container.
    pub container: String,
}

/// docker's exit code for an engine error (125), or 126/127 for a command
/// that cannot run; the message was printed by the caller.
pub fn engine_exit(e: &anyhow::Error) -> u8 {
    match e.downcast_ref::<EngineError>() {
        Some(ee) => ee.exit_code() as u8,
        None => 125,
    }
}

fn open(config: &EngineConfig) -> Result<Engine> {
    Engine::open(config.clone()).context("cannot open the store")
}

fn exit(code: i32) -> ExitCode {
    ExitCode::from(code.clamp(0, 255) as u8)
}

/// Run `op`; if it fails because the image is not in the store, pull the
/// image and run `op` once more (docker's `--pull missing`). The engine looks
/// the image up before it changes anything, so a retry starts clean; and
/// the common case (the image is there) costs no extra lookup.
fn with_pull<T>(
    config: &EngineConfig,
    image: &str,
    mut op: impl FnMut() -> Result<T>,
) -> Result<T> {
    let missing = |e: &anyhow::Error| {
        matches!(e.downcast_ref::<EngineError>(), Some(EngineError::Image { source, .. })
            if matches!(**source, vessel_image::StoreError::NotFound(_)))
    };
    match op() {
        Err(e) if missing(&e) => {}
        other => return other,
    }
    let reference = vessel_image::Reference::parse(image)
        .with_context(|| format!("Invalid image reference {image:?}"))?;
    eprintln!("Unable to find image '{image}' locally");
    let options = vessel_registry::Options {
        progress: std::sync::Arc::new(vessel_registry::render::Bars::stderr()),
        ..Default::default()
    };
    let store = vessel_image::ImageStore::open(&config.root)
        .with_context(|| format!("cannot open the image store {}", config.root.display()))?;
    vessel_registry::pull(&store, &reference, &options)
        .with_context(|| format!("cannot pull {image}"))?;
    op()
}

/// `vessel create`.
pub fn create(config: &EngineConfig, a: &CreateArgs) -> Result<ExitCode> {
    let engine = open(config)?;
    let opts = a.to_options()?;
    let record = with_pull(config, &opts.image, || Ok(engine.create(&opts)?))?;
    println!("{}", record.id);
    Ok(ExitCode::SUCCESS)
}

/// `vessel run`.
pub fn run(config: &EngineConfig, a: &RunArgs) -> Result<ExitCode> {
    let engine = open(config)?;
    let opts = a.create.to_options()?;
    if a.detach {
        let (id, _) = with_pull(config, &opts.image, || {
            Ok(engine.run(&opts, Attach::Detached)?)
        })?;
        println!("{id}");
        return Ok(ExitCode::SUCCESS);
    }
    let _raw = if a.create.tty && a.create.interactive {
        RawMode::enter(&std::io::stdin())
    } else {
        None
    };
    let outcome = with_pull(config, &opts.image, || {
        let attach = Attach::Attached {
            stdio: Stdio::inherit(a.create.interactive)?,
            sig_proxy: a.sig_proxy && !a.create.tty,
        };
        Ok(engine.run(&opts, attach)?)
    })?;
    match outcome {
        (_, Outcome::Exited(code)) => Ok(exit(code)),
        (id, Outcome::Running(_)) => {
            println!("{id}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `vessel start`.
pub fn start(config: &EngineConfig, a: &StartArgs) -> Result<ExitCode> {
    let engine = open(config)?;
    if a.attach {
        let [c] = a.containers.as_slice() else {
            bail!("start -a takes exactly one container");
        };
        let record = engine.inspect(c)?;
        let stdio = Stdio::inherit(a.interactive)?;
        let _raw = if record.config.tty && a.interactive {
            RawMode::enter(&std::io::stdin())
        } else {
            None
        };
        let attach = Attach::Attached {
            stdio,
            sig_proxy: !record.config.tty,
        };
        return match engine.start(c, attach)? {
            Outcome::Exited(code) => Ok(exit(code)),
            Outcome::Running(_) => Ok(ExitCode::SUCCESS),
        };
    }
    each(&a.containers, |c| {
        engine.start(c, Attach::Detached)?;
        Ok(())
    })
}

/// Run `op` on each container, printing its name on success and the error
/// otherwise (docker's style); exit 1 if any failed.
fn each(containers: &[String], mut op: impl FnMut(&str) -> Result<()>) -> Result<ExitCode> {
    each_printing(containers, |c| op(c).map(|()| c.to_owned()))
}

/// Run `op` on each container, printing what it returns, or the error;
/// exit 1 if any failed.
fn each_printing(
    containers: &[String],
    mut op: impl FnMut(&str) -> Result<String>,
) -> Result<ExitCode> {
    let mut failed = false;
    for c in containers {
        match op(c) {
            Ok(line) => println!("{line}"),
            Err(e) => {
                eprintln!("vessel: {e:#}");
                failed = true;
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// `vessel stop`.
pub fn stop(config: &EngineConfig, a: &StopArgs) -> Result<ExitCode> {
    let engine = open(config)?;
    let t = Duration::from_secs(a.time);
    each(&a.containers, |c| Ok(engine.stop(c, t)?))
}

/// `vessel restart`.
pub fn restart(config: &EngineConfig, a: &StopArgs) -> Result<ExitCode> {
    let engine = open(config)?;
    let t = Duration::from_secs(a.time);
    each(&a.containers, |c| {
        engine.restart(c, t).map(drop).map_err(Into::into)
    })
}

/// `vessel kill`.
pub fn kill(config: &EngineConfig, a: &KillArgs) -> Result<ExitCode> {
    let engine = open(config)?;
    each(&a.containers, |c| Ok(engine.kill(c, &a.signal)?))
}

/// `vessel rm`.
pub fn rm(config: &EngineConfig, a: &RmArgs) -> Result<ExitCode> {
    let engine = open(config)?;
    each(&a.containers, |c| {
        Ok(engine.remove_with_volumes(c, a.force, a.volumes)?)
    })
}

/// `vessel pause`.
pub fn pause(config: &EngineConfig, a: &ContainersArgs) -> Result<ExitCode> {
    let engine = open(config)?;
    each(&a.containers, |c| Ok(engine.pause(c)?))
}

/// `vessel unpause`.
pub fn unpause(config: &EngineConfig, a: &ContainersArgs) -> Result<ExitCode> {
    let engine = open(config)?;
    each(&a.containers, |c| Ok(engine.unpause(c)?))
}

/// `vessel wait`: prints each exit code.
pub fn wait(config: &EngineConfig, a: &ContainersArgs) -> Result<ExitCode> {
    let engine = open(config)?;
    each_printing(&a.containers, |c| Ok(engine.wait(c)?.to_string()))
}

/// `vessel rename`.
pub fn rename(config: &EngineConfig, a: &RenameArgs) -> Result<ExitCode> {
    open(config)?.rename(&a.container, &a.new_name)?;
    Ok(ExitCode::SUCCESS)
}

/// `vessel exec`.
pub fn exec(config: &EngineConfig, a: &ExecArgs) -> Result<ExitCode> {
    let engine = open(config)?;
    let req = ExecRequest {
        cmd: a.container_and_command[1..].to_vec(),
        env: a.env.clone(),
        workdir: a.workdir.clone(),
        user: a.user.clone(),
        tty: a.tty,
        interactive: a.interactive,
        detach: a.detach,
        privileged: a.privileged,
    };
    Ok(exit(engine.exec(&a.container_and_command[0], &req)?))
}

/// `vessel logs`.
pub fn logs(config: &EngineConfig, a: &LogsArgs) -> Result<ExitCode> {
    let engine = open(config)?;
    let record = engine.inspect(&a.container)?;
    let dir = engine.containers().dir(&record.id);
    let tail = match a.tail.as_str() {
        "all" | "-1" => None,
        n => Some(
            n.parse::<usize>()
                .map_err(|_| anyhow!("Invalid option --tail: {n:?} is not a number"))?,
        ),
    };
    let mut reader = LogReader::open(&dir)?;
    let mut first = reader.next_entries()?;
    if let Some(n) = tail {
        first.drain(..first.len().saturating_sub(n));
    }
    let print = |entries: Vec<vessel_engine::logs::LogEntry>| -> Result<()> {
        let mut out = std::io::stdout().lock();
        let mut err = std::io::stderr().lock();
        for e in entries {
            let w: &mut dyn Write = match e.stream {
                Stream::Stdout => &mut out,
                Stream::Stderr => &mut err,
            };
            let written = if a.timestamps {
                write!(w, "{} {}", e.time, e.log)
            } else {
                w.write_all(e.log.as_bytes())
            };
            if written.is_err() {
                return Ok(()); // a closed pipe (`| head`) ends the output
            }
        }
        let _ = out.flush();
        Ok(())
    };
    print(first)?;
    if !a.follow {
        return Ok(ExitCode::SUCCESS);
    }
    loop {
        // Read after checking liveness, so the last lines are never lost.
        let live = engine.inspect(&record.id)?.state.status.is_active();
        print(reader.next_entries()?)?;
        if !live {
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `vessel top`.
pub fn top(config: &EngineConfig, a: &TopArgs) -> Result<ExitCode> {
    let procs = open(config)?.top(&a.container)?;
    let rows = procs
        .into_iter()
        .map(|p| {
            vec![
                p.uid.to_string(),
                p.pid.to_string(),
                p.ppid.to_string(),
                p.cmd,
            ]
        })
        .collect();
    print_table(&["UID", "PID", "PPID", "CMD"], rows);
    Ok(ExitCode::SUCCESS)
}

/// `vessel stats --no-stream`: CPU % over a short sample, memory, pids.
pub fn stats(config: &EngineConfig, a: &StatsArgs) -> Result<ExitCode> {
    let engine = open(config)?;
    let targets: Vec<String> = if a.containers.is_empty() {
        engine
            .list()?
            .into_iter()
            .filter(|r| r.state.status == Status::Running)
            .map(|r| r.id)
            .collect()
    } else {
        a.containers.clone()
    };
    let sample = Duration::from_millis(200);
    let before: Vec<_> = targets
        .iter()
        .map(|c| engine.stats(c).map(|(_, s)| s.cpu.usage.total))
        .collect::<std::result::Result<_, _>>()?;
    std::thread::sleep(sample);
    let mut rows = Vec::new();
    let mut docs = Vec::new();
    for (c, cpu0) in targets.iter().zip(before) {
        let (r, s) = engine.stats(c)?;
        let cpu =
            (s.cpu.usage.total.saturating_sub(cpu0)) as f64 / sample.as_nanos() as f64 * 100.0;
        let mem = s.memory.usage.usage;
        let limit = match s.memory.usage.limit {
            0 => host_memory(),
            l => l.min(host_memory()),
        };
        let mem_pct = if limit > 0 {
            mem as f64 / limit as f64 * 100.0
        } else {
            0.0
        };
        docs.push(json!({
            "ID": &r.id[..12], "Name": r.name, "CPUPerc": format!("{cpu:.2}%"),
            "MemUsage": mem, "MemLimit": limit, "MemPerc": format!("{mem_pct:.2}%"),
            "PIDs": s.pids.current,
        }));
        rows.push(vec![
            r.id[..12].to_owned(),
            r.name.clone(),
            format!("{cpu:.2}%"),
            format!("{} / {}", binary_size(mem), binary_size(limit)),
            format!("{mem_pct:.2}%"),
            s.pids.current.to_string(),
        ]);
    }
    if a.format.as_deref() == Some("json") {
        print_json(&Value::Array(docs))?;
    } else {
        print_table(
            &[
                "CONTAINER ID",
                "NAME",
                "CPU %",
                "MEM USAGE / LIMIT",
                "MEM %",
                "PIDS",
            ],
            rows,
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            let kb = m.lines().find_map(|l| l.strip_prefix("MemTotal:"))?;
            kb.trim().trim_end_matches("kB").trim().parse::<u64>().ok()
        })
        .map_or(0, |kb| kb * 1024)
}

/// docker stats' binary units: `1.5MiB`.
fn binary_size(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    format!("{v:.4}")
        .trim_end_matches('0')
        .trim_end_matches('.')
        .to_owned()
        + UNITS[i]
}

/// `Up 5 minutes`, `Exited (0) 3 seconds ago`, ... (docker's STATUS column).
fn status_text(r: &ContainerRecord) -> String {
    let ago = |t: &Option<String>| since(t.as_deref().map_or(0, unix_time));
    let up = |t: &Option<String>| ago(t).trim_end_matches(" ago").to_owned();
    match r.state.status {
        Status::Created => "Created".into(),
        Status::Running => format!("Up {}", up(&r.state.started_at)),
        Status::Paused => format!("Up {} (Paused)", up(&r.state.started_at)),
        Status::Restarting => format!(
            "Restarting ({}) {}",
            r.state.exit_code.unwrap_or(0),
            ago(&r.state.finished_at)
        ),
        Status::Exited => format!(
            "Exited ({}) {}",
            r.state.exit_code.unwrap_or(0),
            ago(&r.state.finished_at)
        ),
    }
}

fn command_text(r: &ContainerRecord) -> String {
    r.config
        .args()
        .iter()
        .map(|a| {
            if a.is_empty() || a.contains(' ') {
                format!("'{a}'")
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn summary(r: &ContainerRecord) -> Value {
    json!({
        "Id": r.id,
        "Names": [r.name],
        "Image": r.image,
        "ImageID": r.image_id,
        "Command": command_text(r),
        "Created": unix_time(&r.created),
        "CreatedAt": r.created,
        "State": r.state.status.to_string(),
        "Status": status_text(r),
        "ExitCode": r.state.exit_code,
        "Pid": r.state.pid,
    })
}

fn keep(r: &ContainerRecord, filters: &[(String, String)]) -> Result<bool> {
    for (k, v) in filters {
        let ok = match k.as_str() {
            "status" => r.state.status.to_string() == *v,
            "name" => r.name.contains(v.as_str()),
            "id" => r.id.starts_with(v.as_str()),
            "ancestor" => {
                r.image == *v || r.image_id.contains(v.as_str()) || {
                    vessel_image::Reference::parse(v).is_ok_and(|x| x.to_string() == r.image)
                }
            }
            "exited" => {
                r.state.status == Status::Exited
                    && r.state.exit_code.map(|c| c.to_string()) == Some(v.clone())
            }
            other => bail!("Invalid filter {other:?} (status, name, id, ancestor, exited)"),
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `vessel ps`.
pub fn ps(config: &EngineConfig, a: &PsArgs) -> Result<ExitCode> {
    let engine = open(config)?;
    let filters: Vec<(String, String)> = a
        .filter
        .iter()
        .map(|f| {
            f.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| anyhow!("Invalid filter {f:?}: expected KEY=VALUE"))
        })
        .collect::<Result<_>>()?;
    let mut list = engine.list()?;
    list.reverse(); // newest first, as docker
    let limit = if a.latest { Some(1) } else { a.last };
    let show_all =
        a.all || limit.is_some() || filters.iter().any(|(k, _)| k == "status" || k == "exited");
    let mut shown = Vec::new();
    for r in list {
        if !show_all && !r.state.status.is_active() {
            continue;
        }
        if keep(&r, &filters)? {
            shown.push(r);
        }
    }
    if let Some(n) = limit {
        shown.truncate(n);
    }
    if a.quiet {
        for r in &shown {
            println!("{}", if a.no_trunc { &r.id[..] } else { &r.id[..12] });
        }
        return Ok(ExitCode::SUCCESS);
    }
    match a.format.as_deref() {
        Some("json") => print_json(&Value::Array(shown.iter().map(summary).collect()))?,
        Some(t) if t != "table" => {
            for r in &shown {
                println!("{}", render(t, &summary(r))?);
            }
        }
        _ => {
            let rows = shown
                .iter()
                .map(|r| {
                    let cmd = format!("\"{}\"", command_text(r));
                    vec![
                        if a.no_trunc {
                            r.id.clone()
                        } else {
                            r.id[..12].to_owned()
                        },
                        r.image.clone(),
                        if a.no_trunc { cmd } else { ellipsis(&cmd, 22) },
                        since(unix_time(&r.created)),
                        status_text(r),
                        crate::network::ports_text(&engine, r),
                        r.name.clone(),
                    ]
                })
                .collect();
            print_table(
                &[
                    "CONTAINER ID",
                    "IMAGE",
                    "COMMAND",
                    "CREATED",
                    "STATUS",
                    "PORTS",
                    "NAMES",
                ],
                rows,
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// docker's `inspect` document of a container.
fn inspect_json(engine: &Engine, r: &ContainerRecord) -> Value {
    let c = &r.config;
    let args = c.args();
    let (policy, retries) = match c.restart {
        RestartPolicy::No => ("no", 0),
        RestartPolicy::OnFailure { max_retries } => ("on-failure", max_retries),
        RestartPolicy::Always => ("always", 0),
        RestartPolicy::UnlessStopped => ("unless-stopped", 0),
    };
    let s = &r.state;
    json!({
        "Id": r.id,
        "Created": r.created,
        "Path": args.first(),
        "Args": args.get(1..).unwrap_or_default(),
        "State": {
            "Status": s.status.to_string(),
            "Running": matches!(s.status, Status::Running | Status::Paused),
            "Paused": s.status == Status::Paused,
            "Restarting": s.status == Status::Restarting,
            "OOMKilled": s.oom_killed,
            "Dead": false,
            "Pid": s.pid,
            "ExitCode": s.exit_code.unwrap_or(0),
            "Error": s.error.clone().unwrap_or_default(),
            "StartedAt": s.started_at.clone().unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
            "FinishedAt": s.finished_at.clone().unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
        },
        "Image": r.image_id,
        "Name": format!("/{}", r.name),
        "RestartCount": s.restart_count,
        "LogPath": vessel_engine::logs::path(&engine.containers().dir(&r.id)),
        "NetworkSettings": crate::network::settings_json(engine, r),
        "Mounts": crate::volumes::mounts_json(engine, &c.mounts),
        "HostConfig": {
            "Memory": c.limits.memory.unwrap_or(0),
            "MemorySwap": c.limits.memory_swap.unwrap_or(0),
            "NanoCpus": c.limits.nano_cpus.unwrap_or(0),
            "CpuShares": c.cpu_shares.unwrap_or(0),
            "PidsLimit": c.limits.pids_limit,
            "Privileged": c.privileged,
            "ReadonlyRootfs": c.read_only,
            "CapAdd": c.cap_add,
            "CapDrop": c.cap_drop,
            "RestartPolicy": {"Name": policy, "MaximumRetryCount": retries},
            "AutoRemove": c.auto_remove,
            "NetworkMode": vessel_engine::network::mode_name(c),
            "Init": c.init,
            "Tmpfs": c.tmpfs.iter().map(|t| (t.destination.clone(), json!(t.options.join(","))))
                .collect::<serde_json::Map<_, _>>(),
        },
        "Config": {
            "Hostname": c.hostname,
            "User": c.user,
            "Env": c.env,
            "Cmd": c.cmd,
            "Entrypoint": c.entrypoint,
            "WorkingDir": c.working_dir,
            "Image": r.image,
            "Tty": c.tty,
            "OpenStdin": c.open_stdin,
        },
    })
}

/// `vessel inspect`.
pub fn inspect(config: &EngineConfig, a: &InspectArgs) -> Result<ExitCode> {
    let engine = open(config)?;
    let mut docs = Vec::new();
    let mut failed = false;
    for c in &a.containers {
        match engine.inspect(c) {
            Ok(r) => docs.push(inspect_json(&engine, &r)),
            Err(e) => {
                eprintln!("vessel: {e:#}");
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
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// `vessel diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The container.
    pub container: String,
}

/// `vessel export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Write to this file instead of stdout.
    #[arg(short = 'o', long)]
    pub output: Option<std::path::PathBuf>,
    /// The container.
    pub container: String,
}

/// `vessel diff`: `A /path`, `C /path`, `D /path`.
pub fn diff(config: &EngineConfig, a: &DiffArgs) -> Result<ExitCode> {
    let changes = open(config)?.diff(&a.container)?;
    let mut out = std::io::stdout().lock();
    for c in changes {
        if writeln!(out, "{} {}", c.kind.letter(), c.path.display()).is_err() {
            break;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `vessel export`: the container's filesystem as a tar, to `-o FILE`
/// (written next to it and renamed, so a failure leaves no half file) or
/// to stdout when it is not a terminal.
pub fn export(config: &EngineConfig, a: &ExportArgs) -> Result<ExitCode> {
    use std::io::IsTerminal;
    let engine = open(config)?;
    match &a.output {
        Some(path) => {
            let tmp = path.with_extension("vessel-partial");
            let file = std::fs::File::create(&tmp)
                .with_context(|| format!("cannot create {}", tmp.display()))?;
            let written = engine
                .export(&a.container, std::io::BufWriter::new(&file))
                .map_err(anyhow::Error::from)
                .and_then(|()| Ok(file.sync_all()?))
                .and_then(|()| Ok(std::fs::rename(&tmp, path)?));
            if written.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            written?;
        }
        None => {
            if std::io::stdout().is_terminal() {
                bail!("Refusing to write a tar to a terminal: use -o FILE or redirect stdout");
            }
            engine.export(&a.container, std::io::stdout().lock())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
