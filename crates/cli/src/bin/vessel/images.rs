//! `vessel image …`, its docker aliases (`images`, `rmi`, `tag`, `load`,
//! `save`, `import`) and `vessel system df|prune`: argument parsing and
//! output only; the work is `vessel-image`'s (catalog, import, remove,
//! prune, gc, usage, archives).
//!
//! Output follows docker's: tables with its columns, human sizes ("4.26MB")
//! and ages ("5 minutes ago"); `--format json` prints a JSON array (the
//! fields of docker's API objects); `--format '{{.Field}}'` applies a small
//! template to each object.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use vessel_engine::{Engine, EngineConfig, Status};
use vessel_image::catalog::{self, ImageInfo, Lookup};
use vessel_image::import::ImportOptions;
use vessel_image::remove::Removed;
use vessel_image::tags::key;
use vessel_image::{archive, gc, history, import, prune, remove, usage, Digest, Reference};

use crate::format::{ellipsis, human_size, print_json, print_table, render, since};

/// `vessel image …`.
#[derive(Debug, clap::Subcommand)]
pub enum ImageCommand {
    /// List images.
    #[command(alias = "list")]
    Ls(ImagesArgs),
    /// Display detailed information on images.
    Inspect(ImageInspectArgs),
    /// Show the history of an image.
    History(HistoryArgs),
    /// Remove images.
    #[command(alias = "remove", alias = "rmi")]
    Rm(RmiArgs),
    /// Remove unused images.
    Prune(PruneArgs),
    /// Create a name TARGET that refers to SOURCE.
    Tag(TagArgs),
    /// Load images from an archive (docker save or OCI archive).
    Load(LoadArgs),
    /// Save images to an archive.
    Save(SaveArgs),
    /// Create an image from a root filesystem tarball.
    Import(ImportArgs),
}

/// `vessel system …`.
#[derive(Debug, clap::Subcommand)]
pub enum SystemCommand {
    /// Show disk usage.
    Df(DfArgs),
    /// Remove stopped containers, unused images and garbage.
    Prune(SystemPruneArgs),
}

/// `vessel images` / `vessel image ls`.
#[derive(Debug, clap::Args)]
pub struct ImagesArgs {
    /// Only images of this repository (`busybox`, `localhost/app:1`).
    pub reference: Option<String>,
    /// Show all images (vessel has no intermediate images; accepted for docker).
    #[arg(short, long)]
    pub all: bool,
    /// Only image IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Do not truncate IDs.
    #[arg(long)]
    pub no_trunc: bool,
    /// Show digests.
    #[arg(long)]
    pub digests: bool,
    /// Filter: `dangling=true|false`, `reference=NAME`.
    #[arg(short, long = "filter")]
    pub filter: Vec<String>,
    /// `table` (default), `json`, or a template like `{{.Repository}}:{{.Tag}}`.
    #[arg(long)]
    pub format: Option<String>,
}

/// `vessel image inspect`.
#[derive(Debug, clap::Args)]
pub struct ImageInspectArgs {
    /// Images (names or IDs).
    #[arg(required = true)]
    pub images: Vec<String>,
    /// `json` (default) or a template like `{{.Id}}`.
    #[arg(short, long)]
    pub format: Option<String>,
}

/// `vessel image history`.
#[derive(Debug, clap::Args)]
pub struct HistoryArgs {
    /// The image.
    pub image: String,
    /// Do not truncate the output.
    #[arg(long)]
    pub no_trunc: bool,
    /// Only image IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Print sizes and dates in human form (`-H=false` for raw numbers).
    #[arg(short = 'H', long, default_value_t = true, action = clap::ArgAction::Set)]
    pub human: bool,
    /// `table` (default), `json`, or a template.
    #[arg(long)]
    pub format: Option<String>,
}

/// `vessel rmi` / `vessel image rm`.
#[derive(Debug, clap::Args)]
pub struct RmiArgs {
    /// Images (names or IDs).
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Remove even if containers use the image (it is then only untagged)
    /// or an ID has several names.
    #[arg(short, long)]
    pub force: bool,
}

/// `vessel image prune`.
#[derive(Debug, clap::Args)]
pub struct PruneArgs {
    /// Remove every image no container uses, not only untagged ones.
    #[arg(short, long)]
    pub all: bool,
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub force: bool,
}

/// `vessel tag` / `vessel image tag`.
#[derive(Debug, clap::Args)]
pub struct TagArgs {
    /// Existing image (name or ID).
    pub source: String,
    /// New name.
    pub target: String,
}

/// `vessel load` / `vessel image load`.
#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// Read from this archive instead of stdin.
    #[arg(short, long)]
    pub input: Option<PathBuf>,
    /// Print nothing.
    #[arg(short, long)]
    pub quiet: bool,
}

/// `vessel save` / `vessel image save`.
#[derive(Debug, clap::Args)]
pub struct SaveArgs {
    /// Images to save (names).
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Write to this file instead of stdout.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// `oci-archive` or `docker-archive`: vessel writes one archive that is
    /// both (an OCI layout plus docker's manifest.json), so either is accepted.
    #[arg(long, default_value = "oci-archive", value_parser = ["oci-archive", "docker-archive"])]
    pub format: String,
}

/// `vessel import` / `vessel image import`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// Root filesystem tarball (plain, gzip or zstd), or `-` for stdin.
    pub source: String,
    /// Name for the image (`NAME[:TAG]`); without one the image is untagged.
    pub reference: Option<String>,
    /// Dockerfile instruction for the config (CMD, ENTRYPOINT, ENV, WORKDIR,
    /// USER, EXPOSE, LABEL, VOLUME); repeatable.
    #[arg(short, long)]
    pub change: Vec<String>,
    /// Comment for the image's history.
    #[arg(short, long)]
    pub message: Option<String>,
}

/// `vessel system df`.
#[derive(Debug, clap::Args)]
pub struct DfArgs {
    /// Show each image, container and layer.
    #[arg(short, long)]
    pub verbose: bool,
    /// `table` (default) or `json`.
    #[arg(long)]
    pub format: Option<String>,
}

/// `vessel system prune`.
#[derive(Debug, clap::Args)]
pub struct SystemPruneArgs {
    /// Remove every unused image, not only untagged ones.
    #[arg(short, long)]
    pub all: bool,
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub force: bool,
}

/// Run `vessel image …` (and the aliases, given as the same variants).
pub fn image(config: &EngineConfig, cmd: ImageCommand) -> Result<ExitCode> {
    let engine = Engine::open(config.clone())?;
    match cmd {
        ImageCommand::Ls(a) => ls(&engine, a),
        ImageCommand::Inspect(a) => inspect(&engine, a),
        ImageCommand::History(a) => show_history(&engine, a),
        ImageCommand::Rm(a) => rmi(&engine, a),
        ImageCommand::Prune(a) => image_prune(&engine, a),
        ImageCommand::Tag(a) => tag(&engine, a),
        ImageCommand::Load(a) => load(&engine, a),
        ImageCommand::Save(a) => save(&engine, a),
        ImageCommand::Import(a) => import_image(&engine, a),
    }
}

/// Run `vessel system …`.
pub fn system(config: &EngineConfig, cmd: SystemCommand) -> Result<ExitCode> {
    let engine = Engine::open(config.clone())?;
    match cmd {
        SystemCommand::Df(a) => df(&engine, a),
        SystemCommand::Prune(a) => system_prune(&engine, a),
    }
}

// ---- listing -------------------------------------------------------------

fn ls(engine: &Engine, a: ImagesArgs) -> Result<ExitCode> {
    let (images, broken) = catalog::list(engine.images())?;
    for b in &broken {
        let what = b
            .name
            .clone()
            .unwrap_or_else(|| b.target.digest.to_string());
        eprintln!(
            "vessel: warning: image {what} is unreadable: {:#}",
            anyhow!(b.error.to_string())
        );
    }
    let mut dangling: Option<bool> = None;
    let mut wanted: Vec<String> = a.reference.iter().cloned().collect();
    for f in &a.filter {
        match f.split_once('=') {
            Some(("dangling", v)) => dangling = Some(parse_bool(v)?),
            Some(("reference", v)) => wanted.push(v.to_string()),
            _ => bail!("Invalid filter {f:?}: use dangling=true|false or reference=NAME"),
        }
    }
    let mut rows = Vec::new();
    for i in &images {
        if dangling.is_some_and(|d| d != i.names.is_empty()) {
            continue;
        }
        let digest = format!(
            "{}",
            i.targets.first().map_or(&i.manifest_digest, |t| &t.digest)
        );
        let mut names: Vec<(String, String)> =
            i.names.iter().map(|n| (repo_of(n), tag_of(n))).collect();
        if names.is_empty() {
            names.push(("<none>".into(), "<none>".into()));
        }
        for (repo, tag) in names {
            if !wanted.is_empty() && !wanted.iter().any(|w| matches_reference(w, &repo, &tag)) {
                continue;
            }
            rows.push(json!({
                "ID": id_text(&i.id, a.no_trunc),
                "Repository": repo,
                "Tag": tag,
                "Digest": digest,
                "CreatedSince": since(i.created_unix()),
                "CreatedAt": i.created().unwrap_or(""),
                "Size": human_size(i.size),
            }));
        }
    }
    match a.format.as_deref() {
        Some("json") => {
            let shown: BTreeSet<&str> = rows.iter().filter_map(|r| r["ID"].as_str()).collect();
            let list: Vec<Value> = images
                .iter()
                .filter(|i| shown.contains(id_text(&i.id, a.no_trunc).as_str()))
                .map(|i| summary_json(engine, i))
                .collect();
            print_json(&Value::Array(list))?;
        }
        Some(t) if t != "table" => {
            for r in &rows {
                println!("{}", render(t, r)?);
            }
        }
        _ if a.quiet => {
            for r in &rows {
                println!("{}", r["ID"].as_str().unwrap_or(""));
            }
        }
        _ => {
            let mut head = vec!["REPOSITORY", "TAG"];
            let mut cols = vec!["Repository", "Tag"];
            if a.digests {
                head.push("DIGEST");
                cols.push("Digest");
            }
            head.extend(["IMAGE ID", "CREATED", "SIZE"]);
            cols.extend(["ID", "CreatedSince", "Size"]);
            let body = rows
                .iter()
                .map(|r| {
                    cols.iter()
                        .map(|c| r[*c].as_str().unwrap_or("").to_string())
                        .collect()
                })
                .collect();
            print_table(&head, body);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn matches_reference(want: &str, repo: &str, tag: &str) -> bool {
    let Ok(r) = Reference::parse(want) else {
        return false;
    };
    let tag_given = want
        .rsplit('/')
        .next()
        .is_some_and(|last| last.contains(':'));
    repo == repo_of(&r) && (!tag_given || Some(tag) == r.tag())
}

/// docker's `/images/json` object.
fn summary_json(engine: &Engine, i: &ImageInfo) -> Value {
    json!({
        "Id": i.id.to_string(),
        "ParentId": "",
        "RepoTags": i.names.iter().filter(|n| n.tag().is_some()).map(Reference::familiar).collect::<Vec<_>>(),
        "RepoDigests": repo_digests(i),
        "Created": i.created_unix(),
        "Size": i.size,
        "SharedSize": -1,
        "VirtualSize": i.size,
        "Labels": i.config.config().as_ref().and_then(|c| c.labels().clone()).unwrap_or_default(),
        "Containers": users(engine).map(|u| u.get(&i.id).map_or(0, Vec::len) as i64).unwrap_or(-1),
    })
}

fn repo_digests(i: &ImageInfo) -> Vec<String> {
    let target = i.targets.first().map_or(&i.manifest_digest, |t| &t.digest);
    let repos: BTreeSet<String> = i.names.iter().map(repo_of).collect();
    repos.into_iter().map(|r| format!("{r}@{target}")).collect()
}

fn inspect(engine: &Engine, a: ImageInspectArgs) -> Result<ExitCode> {
    let mut out = Vec::new();
    let mut failed = false;
    for what in &a.images {
        match catalog::lookup(engine.images(), what) {
            Ok(found) => out.push(inspect_json(engine, found.image())?),
            Err(e) => {
                eprintln!("vessel: {:#}", anyhow::Error::from(e));
                failed = true;
            }
        }
    }
    match a.format.as_deref() {
        None | Some("json") => print_json(&Value::Array(out))?,
        Some(t) => {
            for v in &out {
                println!("{}", render(t, v)?);
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// docker's `image inspect` object.
fn inspect_json(engine: &Engine, i: &ImageInfo) -> Result<Value> {
    let raw = engine
        .images()
        .content()
        .read_blob(&i.id, vessel_image::manifest::MAX_JSON_BLOB)
        .with_context(|| format!("Image {}", i.id.short()))?;
    let raw: Value = serde_json::from_slice(&raw).context("Image config does not parse")?;
    let mut config = raw.get("config").cloned().unwrap_or_else(|| json!({}));
    for (k, default) in [
        ("User", json!("")),
        ("ExposedPorts", Value::Null),
        ("Env", Value::Null),
        ("Cmd", Value::Null),
        ("Volumes", Value::Null),
        ("WorkingDir", json!("")),
        ("Entrypoint", Value::Null),
        ("Labels", Value::Null),
    ] {
        if let Some(obj) = config.as_object_mut() {
            obj.entry(k).or_insert(default);
        }
    }
    let comment = history::history(i)
        .first()
        .map(|s| s.comment.clone())
        .unwrap_or_default();
    Ok(json!({
        "Id": i.id.to_string(),
        "RepoTags": i.names.iter().filter(|n| n.tag().is_some()).map(Reference::familiar).collect::<Vec<_>>(),
        "RepoDigests": repo_digests(i),
        "Parent": "",
        "Comment": comment,
        "Created": i.created().unwrap_or(""),
        "Author": raw.get("author").cloned().unwrap_or(json!("")),
        "Config": config,
        "Architecture": raw.get("architecture").cloned().unwrap_or(json!("")),
        "Os": raw.get("os").cloned().unwrap_or(json!("")),
        "Size": i.size,
        "RootFS": {
            "Type": raw.pointer("/rootfs/type").cloned().unwrap_or(json!("layers")),
            "Layers": raw.pointer("/rootfs/diff_ids").cloned().unwrap_or(json!([])),
        },
        "Descriptor": {"digest": i.manifest_digest.to_string()},
    }))
}

fn show_history(engine: &Engine, a: HistoryArgs) -> Result<ExitCode> {
    let found = catalog::lookup(engine.images(), &a.image)?;
    let image = found.image();
    let steps = history::history(image);
    let id = |n: usize| {
        if n == 0 {
            id_text(&image.id, a.no_trunc)
        } else {
            "<missing>".to_string()
        }
    };
    let created = |c: &Option<String>| {
        let t = c.as_deref().and_then(vessel_image::time::parse_rfc3339);
        match (t, a.human) {
            (Some(t), true) => since(t),
            (_, false) => c.clone().unwrap_or_default(),
            (None, true) => "N/A".into(),
        }
    };
    match a.format.as_deref() {
        Some("json") => {
            let list: Vec<Value> = steps
                .iter()
                .enumerate()
                .map(|(n, s)| {
                    json!({
                        "Id": if n == 0 { image.id.to_string() } else { "<missing>".into() },
                        "Created": s.created.as_deref().and_then(vessel_image::time::parse_rfc3339).unwrap_or(0),
                        "CreatedBy": s.created_by,
                        "Tags": if n == 0 { image.names.iter().map(Reference::familiar).collect() } else { Vec::new() },
                        "Size": s.size,
                        "Comment": s.comment,
                    })
                })
                .collect();
            print_json(&Value::Array(list))?;
        }
        Some(t) if t != "table" => {
            for (n, s) in steps.iter().enumerate() {
                let v = json!({"ID": id(n), "CreatedSince": created(&s.created),
                    "CreatedAt": s.created, "CreatedBy": s.created_by,
                    "Size": human_size(s.size), "Comment": s.comment});
                println!("{}", render(t, &v)?);
            }
        }
        _ if a.quiet => {
            for n in 0..steps.len() {
                println!("{}", id(n));
            }
        }
        _ => {
            let body = steps
                .iter()
                .enumerate()
                .map(|(n, s)| {
                    let by = if a.no_trunc {
                        s.created_by.clone()
                    } else {
                        ellipsis(&s.created_by, 45)
                    };
                    let size = if a.human {
                        human_size(s.size)
                    } else {
                        s.size.to_string()
                    };
                    vec![id(n), created(&s.created), by, size, s.comment.clone()]
                })
                .collect();
            print_table(&["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"], body);
        }
    }
    Ok(ExitCode::SUCCESS)
}

// ---- changes -------------------------------------------------------------

/// Image IDs -> names of the containers that use them.
fn users(engine: &Engine) -> Result<BTreeMap<Digest, Vec<String>>> {
    let mut out: BTreeMap<Digest, Vec<String>> = BTreeMap::new();
    for c in engine.containers().list()? {
        if let Ok(d) = Digest::parse(&c.image_id) {
            out.entry(d).or_default().push(c.name.clone());
        }
    }
    Ok(out)
}

fn collect(engine: &Engine, users: &BTreeMap<Digest, Vec<String>>) -> Result<gc::Collected> {
    let in_use: BTreeSet<Digest> = users.keys().cloned().collect();
    Ok(gc::collect(engine.images(), &in_use)?)
}

fn rmi(engine: &Engine, a: RmiArgs) -> Result<ExitCode> {
    let users = users(engine)?;
    let mut failed = false;
    for what in &a.images {
        match remove::remove(engine.images(), what, a.force, &users) {
            Ok(done) => print_removed(&done, "Untagged: ", "Deleted: "),
            Err(e) => {
                eprintln!("vessel: {:#}", anyhow::Error::from(e));
                failed = true;
            }
        }
    }
    collect(engine, &users)?;
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn print_removed(done: &[Removed], untagged: &str, deleted: &str) {
    for r in done {
        match r {
            Removed::Untagged(n) => println!("{untagged}{n}"),
            Removed::Deleted(d) => println!("{deleted}{d}"),
        }
    }
}

fn image_prune(engine: &Engine, a: PruneArgs) -> Result<ExitCode> {
    let warning = if a.all {
        "WARNING! This will remove all images without at least one container associated to them."
    } else {
        "WARNING! This will remove all dangling images."
    };
    if !a.force && !confirm(warning)? {
        return Ok(ExitCode::SUCCESS);
    }
    let users = users(engine)?;
    let (removed, collected) = prune::prune(engine.images(), a.all, &users)?;
    if !removed.is_empty() {
        println!("Deleted Images:");
        print_removed(&removed, "untagged: ", "deleted: ");
        println!();
    }
    println!("Total reclaimed space: {}", human_size(collected.bytes()));
    Ok(ExitCode::SUCCESS)
}

fn tag(engine: &Engine, a: TagArgs) -> Result<ExitCode> {
    let found = catalog::lookup(engine.images(), &a.source)?;
    let target = match &found {
        Lookup::Name(r, _) => engine.images().target(r)?,
        Lookup::Id(i) => i.targets[0].clone(),
    };
    let new = Reference::parse(&a.target)
        .with_context(|| format!("Invalid target name {:?}", a.target))?;
    if new.digest().is_some() {
        bail!(
            "Invalid target name {:?}: a tag cannot carry a digest",
            a.target
        );
    }
    engine.images().tags().update_index(|index| {
        index.retarget(key(&new), target);
        Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

fn load(engine: &Engine, a: LoadArgs) -> Result<ExitCode> {
    let loaded = match &a.input {
        Some(p) => {
            let f = File::open(p).with_context(|| format!("Cannot open {}", p.display()))?;
            archive::load(engine.images(), io::BufReader::new(f))
                .with_context(|| format!("Cannot load {}", p.display()))?
        }
        None => {
            if io::stdin().is_terminal() {
                bail!("Refusing to read an archive from a terminal: use -i FILE or redirect stdin");
            }
            archive::load(engine.images(), io::stdin().lock()).context("Cannot load from stdin")?
        }
    };
    if !a.quiet {
        for l in &loaded {
            if l.names.is_empty() {
                println!("Loaded image ID: {}", l.config);
            }
            for n in &l.names {
                println!("Loaded image: {}", n.familiar());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn save(engine: &Engine, a: SaveArgs) -> Result<ExitCode> {
    let mut refs = Vec::new();
    for what in &a.images {
        match catalog::lookup(engine.images(), what)? {
            Lookup::Name(r, _) => refs.push(r),
            Lookup::Id(i) if !i.names.is_empty() => refs.extend(i.names.iter().cloned()),
            Lookup::Id(i) => bail!(
                "Image {} has no name; give it one with `vessel tag` to save it",
                i.id.short()
            ),
        }
    }
    match &a.output {
        Some(path) => write_file_atomic(path, |w| Ok(archive::save(engine.images(), &refs, w)?))?,
        None => {
            if io::stdout().is_terminal() {
                bail!("Cowardly refusing to save to a terminal. Use the -o flag or redirect");
            }
            let out = io::BufWriter::new(io::stdout().lock());
            archive::save(engine.images(), &refs, out)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Write `path` through a temporary file beside it, renamed over on success,
/// so a failed save leaves no half archive.
fn write_file_atomic(
    path: &Path,
    f: impl FnOnce(&mut io::BufWriter<&File>) -> Result<()>,
) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let file =
            File::create(&tmp).with_context(|| format!("Cannot create {}", tmp.display()))?;
        let mut w = io::BufWriter::new(&file);
        f(&mut w)?;
        w.flush()
            .with_context(|| format!("Cannot write {}", path.display()))?;
        drop(w);
        file.sync_all()
            .with_context(|| format!("Cannot write {}", path.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("Cannot write {}", path.display()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn import_image(engine: &Engine, a: ImportArgs) -> Result<ExitCode> {
    let name = a
        .reference
        .as_deref()
        .map(|r| Reference::parse(r).with_context(|| format!("Invalid image name {r:?}")))
        .transpose()?;
    let opts = ImportOptions {
        changes: a.change.clone(),
        message: a.message.clone(),
        source_name: a.source.clone(),
        name,
    };
    let imported = if a.source == "-" {
        import::import(engine.images(), io::stdin().lock(), &opts)?
    } else {
        let f = File::open(&a.source).with_context(|| format!("Cannot open {}", a.source))?;
        import::import(engine.images(), io::BufReader::new(f), &opts)?
    };
    println!("{}", imported.id);
    Ok(ExitCode::SUCCESS)
}

// ---- system --------------------------------------------------------------

fn df(engine: &Engine, a: DfArgs) -> Result<ExitCode> {
    let records = engine.containers().list()?;
    let users = users(engine)?;
    let keys: Vec<String> = records.iter().map(|r| r.id.clone()).collect();
    let du = usage::disk_usage(engine.images(), &users, &keys)?;
    let running: BTreeSet<&str> = records
        .iter()
        .filter(|r| r.state.status == Status::Running)
        .map(|r| r.id.as_str())
        .collect();
    let ctr_size: u64 = du.containers.iter().map(|c| c.size).sum();
    let ctr_reclaim: u64 = du
        .containers
        .iter()
        .filter(|c| !running.contains(c.key.as_str()))
        .map(|c| c.size)
        .sum();
    let layer_size: u64 = du.layers.iter().map(|l| l.size).sum();
    let layer_reclaim: u64 = du.layers.iter().filter(|l| !l.in_use).map(|l| l.size).sum();
    let rows = [
        (
            "Images",
            du.images.len(),
            du.images.iter().filter(|i| i.containers > 0).count(),
            du.images_size,
            du.images_reclaimable,
        ),
        (
            "Containers",
            du.containers.len(),
            running.len(),
            ctr_size,
            ctr_reclaim,
        ),
        (
            "Layers",
            du.layers.len(),
            du.layers.iter().filter(|l| l.in_use).count(),
            layer_size,
            layer_reclaim,
        ),
    ];
    if a.format.as_deref() == Some("json") {
        let list: Vec<Value> = rows
            .iter()
            .map(|(t, n, act, size, rec)| json!({"Type": t, "TotalCount": n, "Active": act, "Size": size, "Reclaimable": rec}))
            .collect();
        print_json(&Value::Array(list))?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(f) = a.format.as_deref().filter(|f| *f != "table") {
        bail!("Unsupported --format {f:?} for system df: use table or json");
    }
    let body = rows
        .iter()
        .map(|(t, n, act, size, rec)| {
            let pct = if *size > 0 { rec * 100 / size } else { 0 };
            vec![
                t.to_string(),
                n.to_string(),
                act.to_string(),
                human_size(*size),
                format!("{} ({pct}%)", human_size(*rec)),
            ]
        })
        .collect();
    print_table(&["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"], body);
    if a.verbose {
        println!("\nImages space usage:\n");
        let body = du
            .images
            .iter()
            .flat_map(|u| {
                let names = if u.image.names.is_empty() {
                    vec![("<none>".into(), "<none>".into())]
                } else {
                    u.image
                        .names
                        .iter()
                        .map(|n| (repo_of(n), tag_of(n)))
                        .collect()
                };
                names.into_iter().map(move |(repo, tag)| {
                    vec![
                        repo,
                        tag,
                        u.image.id.short().to_string(),
                        since(u.image.created_unix()),
                        human_size(u.image.size),
                        human_size(u.shared),
                        human_size(u.unique),
                        u.containers.to_string(),
                    ]
                })
            })
            .collect();
        print_table(
            &[
                "REPOSITORY",
                "TAG",
                "IMAGE ID",
                "CREATED",
                "SIZE",
                "SHARED SIZE",
                "UNIQUE SIZE",
                "CONTAINERS",
            ],
            body,
        );
        println!("\nContainers space usage:\n");
        let body = records
            .iter()
            .zip(&du.containers)
            .map(|(r, u)| {
                vec![
                    r.id[..12].to_string(),
                    r.image.clone(),
                    human_size(u.size),
                    r.state.status.to_string(),
                    r.name.clone(),
                ]
            })
            .collect();
        print_table(&["CONTAINER ID", "IMAGE", "SIZE", "STATUS", "NAMES"], body);
        println!("\nLayers space usage:\n");
        let body = du
            .layers
            .iter()
            .map(|l| {
                vec![
                    l.name[..12].to_string(),
                    human_size(l.size),
                    (if l.in_use { "yes" } else { "no" }).to_string(),
                ]
            })
            .collect();
        print_table(&["LAYER", "SIZE", "IN USE"], body);
    }
    Ok(ExitCode::SUCCESS)
}

fn system_prune(engine: &Engine, a: SystemPruneArgs) -> Result<ExitCode> {
    let images = if a.all {
        "all images without at least one container associated to them"
    } else {
        "all dangling images"
    };
    let warning = format!("WARNING! This will remove:\n  - all stopped containers\n  - {images}\n");
    if !a.force && !confirm(&warning)? {
        return Ok(ExitCode::SUCCESS);
    }
    let mut removed = Vec::new();
    let mut failed = false;
    for r in engine.containers().list()? {
        if matches!(r.state.status, Status::Exited | Status::Created) {
            match engine.remove(&r.id, false) {
                Ok(()) => removed.push(r.id),
                Err(e) => {
                    eprintln!("vessel: {:#}", anyhow::Error::from(e));
                    failed = true;
                }
            }
        }
    }
    if !removed.is_empty() {
        println!("Deleted Containers:");
        for id in &removed {
            println!("{id}");
        }
        println!();
    }
    let users = users(engine)?;
    let (gone, collected) = prune::prune(engine.images(), a.all, &users)?;
    if !gone.is_empty() {
        println!("Deleted Images:");
        print_removed(&gone, "untagged: ", "deleted: ");
        println!();
    }
    println!("Total reclaimed space: {}", human_size(collected.bytes()));
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

// ---- output helpers ------------------------------------------------------

pub(crate) fn confirm(warning: &str) -> Result<bool> {
    print!("{warning}\nAre you sure you want to continue? [y/N] ");
    io::stdout().flush()?;
    let mut line = String::new();
    io::stdin().lock().read_line(&mut line)?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes" | "Yes"))
}

fn parse_bool(v: &str) -> Result<bool> {
    match v {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => bail!("Invalid boolean {v:?} in filter: use true or false"),
    }
}

/// `busybox`, `localhost/app`: the familiar name without tag or digest.
fn repo_of(r: &Reference) -> String {
    let mut s = r.familiar();
    if let Some(d) = r.digest() {
        s.truncate(s.len() - d.to_string().len() - 1);
    }
    if let Some(t) = r.tag() {
        s.truncate(s.len() - t.len() - 1);
    }
    s
}

fn tag_of(r: &Reference) -> String {
    r.tag().unwrap_or("<none>").to_string()
}

fn id_text(id: &Digest, no_trunc: bool) -> String {
    if no_trunc {
        id.to_string()
    } else {
        id.short().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_templates_read_like_docker() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1000), "1kB");
        assert_eq!(human_size(12_345), "12.3kB");
        assert_eq!(human_size(4_260_000), "4.26MB");
        assert_eq!(human_size(125_000_000), "125MB");
        let v = json!({"Id": "sha256:x", "Config": {"Cmd": ["sh"]}});
        assert_eq!(
            render("{{.Id}}\\t{{json .Config.Cmd}}", &v).unwrap(),
            "sha256:x\t[\"sh\"]"
        );
        assert!(render("{{.Nope}}", &v).is_err());
        assert_eq!(repo_of(&Reference::parse("busybox:1").unwrap()), "busybox");
        assert_eq!(
            repo_of(&Reference::parse("localhost/a/b:2").unwrap()),
            "localhost/a/b"
        );
    }
}
