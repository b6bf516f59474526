//! The build: stages in order, each instruction a step with a cache key.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use vessel_engine::{Engine, NetworkMode};
use vessel_image::gc::Lease;
use vessel_image::manifest::Platform;
use vessel_image::tags::{key as tag_key, Target};
use vessel_image::{Digest, ImageStore, Reference, StoreError};

use crate::cache::{self, Cache};
use crate::config_ops as ops;
use crate::context::{self, Root};
use crate::copy::{self, CopySpec};
use crate::dockerignore::{clean, Ignore};
use crate::error::BuildError;
use crate::parse::{self, Args, Instruction, Keyword};
use crate::stages;
use crate::state::State;
use crate::subst;
use crate::workspace::Mounted;

/// Largest Containerfile read.
const MAX_CONTAINERFILE: u64 = 16 << 20;

/// What to build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The context directory.
    pub context: PathBuf,
    /// `-f`; default `CONTEXT/Containerfile`, else `CONTEXT/Dockerfile`.
    pub containerfile: Option<PathBuf>,
    /// `-t` names (none: the image is kept untagged).
    pub tags: Vec<Reference>,
    /// `--build-arg K=V`.
    pub build_args: BTreeMap<String, String>,
    /// `--target`.
    pub target: Option<String>,
    /// `--no-cache`.
    pub no_cache: bool,
    /// The network of RUN containers.
    pub network: NetworkMode,
    /// For pulling base images.
    pub registry: vessel_registry::Options,
}

/// Where the build's output goes.
pub struct Output {
    /// Step lines (`STEP 2/5: RUN ...`, `--> Using cache`).
    pub log: Box<dyn Write + Send>,
    /// RUN's stdout and stderr (`None`: discarded).
    pub run: Option<File>,
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Output")
            .field("run", &self.run)
            .finish_non_exhaustive()
    }
}

/// The result.
#[derive(Debug, Clone)]
pub struct Built {
    /// The image ID.
    pub id: Digest,
    /// Its manifest.
    pub target: Target,
    /// Steps that changed the filesystem and were taken from the cache.
    pub cached_layers: usize,
    /// RUN steps executed.
    pub runs: usize,
}

struct StageDone {
    name: Option<String>,
    state: State,
    key: String,
}

struct Ctx<'a> {
    engine: &'a Engine,
    opts: &'a BuildOptions,
    out: &'a mut Output,
    file: String,
    escape: char,
    context: PathBuf,
    ignore: Ignore,
    cache: Cache,
    lease: Lease,
    meta_args: BTreeMap<String, String>,
    /// Stages built so far; `None` for one the target does not need.
    done: Vec<Option<StageDone>>,
    step: usize,
    steps: usize,
    built: Built,
}

fn store_err<E: std::error::Error + Send + Sync + 'static>(
    what: &str,
) -> impl FnOnce(E) -> BuildError + '_ {
    move |e| BuildError::store(what)(Box::new(e))
}

/// Build per `opts`; the image is tagged with `opts.tags`.
pub fn build(engine: &Engine, opts: &BuildOptions, out: &mut Output) -> Result<Built, BuildError> {
    let context = std::fs::canonicalize(&opts.context)
        .map_err(BuildError::io("open the build context", &opts.context))?;
    let path = match &opts.containerfile {
        Some(p) => p.clone(),
        None if context.join("Containerfile").exists() => context.join("Containerfile"),
        None => context.join("Dockerfile"),
    };
    let mut text = String::new();
    File::open(&path)
        .map_err(BuildError::io("open", &path))?
        .take(MAX_CONTAINERFILE)
        .read_to_string(&mut text)
        .map_err(BuildError::io("read", &path))?;
    let file = path.display().to_string();
    let cf = parse::parse(&file, &text)?;
    let ignore = match std::fs::read_to_string(context.join(".dockerignore")) {
        Ok(t) => Ignore::parse(&t)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ignore::default(),
        Err(e) => return Err(BuildError::io("read", context.join(".dockerignore"))(e)),
    };

    // ARGs before the first FROM, then stages.
    let mut meta = Vec::new();
    let mut stages: Vec<Vec<Instruction>> = Vec::new();
    for i in cf.instructions {
        match (i.keyword, stages.last_mut()) {
            (Keyword::From, _) => stages.push(vec![i]),
            (_, Some(s)) => s.push(i),
            (Keyword::Arg, None) => meta.push(i),
            (_, None) => {
                return Err(step_err(
                    &file,
                    &i,
                    BuildError::Invalid("only ARG may come before the first FROM".into()),
                ))
            }
        }
    }
    if stages.is_empty() {
        return Err(BuildError::NoFrom(file));
    }
    let target = match &opts.target {
        None => stages.len() - 1,
        Some(t) => stages
            .iter()
            .position(|s| stage_name(&s[0]).is_some_and(|n| n.eq_ignore_ascii_case(t)))
            .ok_or_else(|| BuildError::NoTarget(t.clone()))?,
    };
    let store = engine.images();
    let mut ctx = Ctx {
        engine,
        opts,
        out,
        file,
        escape: cf.escape,
        context,
        ignore,
        cache: Cache::open(store.root()),
        lease: store.lease().map_err(store_err("take a lease"))?,
        meta_args: BTreeMap::new(),
        done: Vec::new(),
        step: 0,
        steps: 0,
        built: Built {
            id: Digest::of(b""),
            target: Target {
                media_type: String::new(),
                digest: Digest::of(b""),
                size: 0,
            },
            cached_layers: 0,
            runs: 0,
        },
    };
    for i in &meta {
        ctx.announce(i);
        ctx.meta_arg(i).map_err(|e| step_err(&ctx.file, i, e))?;
    }
    let names: Vec<Option<String>> = stages.iter().map(|s| stage_name(&s[0])).collect();
    let needed = stages::needed(&stages, &names, target, |i| {
        let env = |n: &str| ctx.meta_args.get(n).cloned();
        let words = subst::words(&shell_text(&stages[i][0]), ctx.escape, &env).ok()?;
        words.into_iter().next()
    });
    ctx.steps = meta.len()
        + stages[..=target]
            .iter()
            .zip(&needed)
            .filter(|(_, n)| **n)
            .map(|(s, _)| s.len())
            .sum::<usize>();
    for (stage, needed) in stages[..=target].iter().zip(needed) {
        if !needed {
            // Keeps the indexes of later stages; nothing refers to it.
            ctx.done.push(None);
            continue;
        }
        let done = ctx.stage(stage)?;
        ctx.done.push(Some(done));
    }
    let last = ctx
        .done
        .pop()
        .flatten()
        .expect("the target stage is always built");
    let target = last.state.write(store, &mut ctx.lease)?;
    store
        .tags()
        .update_index(|index| {
            if opts.tags.is_empty() {
                index.add_untagged(target.clone());
            }
            for t in &opts.tags {
                index.retarget(tag_key(t), target.clone());
            }
            Ok(())
        })
        .map_err(store_err("tag the image"))?;
    ctx.built.id = last.state.id();
    ctx.built.target = target;
    let id = ctx.built.id.clone();
    let _ = writeln!(ctx.out.log, "COMMIT {}", id.short());
    for t in &opts.tags {
        let _ = writeln!(ctx.out.log, "Successfully tagged {}", t.familiar());
    }
    Ok(ctx.built)
}

fn stage_name(from: &Instruction) -> Option<String> {
    let Args::Shell(s) = &from.args else {
        return None;
    };
    let w: Vec<&str> = s.split_whitespace().collect();
    match w.as_slice() {
        [_, as_, name] if as_.eq_ignore_ascii_case("as") => Some(name.to_string()),
        _ => None,
    }
}

fn step_err(file: &str, i: &Instruction, e: BuildError) -> BuildError {
    let mut text: String = i.text.chars().take(80).collect();
    if text.len() < i.text.len() {
        text.push('…');
    }
    BuildError::Step {
        file: file.to_string(),
        line: i.line,
        instruction: text,
        source: Box::new(e),
    }
}

fn shell_text(i: &Instruction) -> String {
    match &i.args {
        Args::Shell(s) => s.clone(),
        Args::Exec(v) => serde_json::to_string(v).expect("JSON serializes"),
    }
}

/// A stage being built.
struct Stage {
    state: State,
    key: String,
    /// ARGs declared in this stage, with their values.
    args: BTreeMap<String, String>,
    cmd_set: bool,
}

impl Stage {
    fn lookup(&self) -> impl Fn(&str) -> Option<String> + '_ {
        move |n: &str| self.state.env(n).or_else(|| self.args.get(n).cloned())
    }
}

impl Ctx<'_> {
    fn announce(&mut self, i: &Instruction) {
        self.step += 1;
        let _ = writeln!(
            self.out.log,
            "STEP {}/{}: {}",
            self.step, self.steps, i.text
        );
    }

    fn meta_arg(&mut self, i: &Instruction) -> Result<(), BuildError> {
        let env = |n: &str| self.meta_args.get(n).cloned();
        let words = subst::words(&shell_text(i), self.escape, &env).map_err(BuildError::Subst)?;
        for w in words {
            let (k, v) = match w.split_once('=') {
                Some((k, v)) => (k.to_string(), Some(v.to_string())),
                None => (w, None),
            };
            let v = self
                .opts
                .build_args
                .get(&k)
                .cloned()
                .or(v)
                .unwrap_or_default();
            self.meta_args.insert(k, v);
        }
        Ok(())
    }

    fn stage(&mut self, instrs: &[Instruction]) -> Result<StageDone, BuildError> {
        let from = &instrs[0];
        self.announce(from);
        let (mut stage, name) = self.from(from).map_err(|e| step_err(&self.file, from, e))?;
        for i in &instrs[1..] {
            self.announce(i);
            self.instruction(&mut stage, i)
                .map_err(|e| step_err(&self.file, i, e))?;
        }
        Ok(StageDone {
            name,
            state: stage.state,
            key: stage.key,
        })
    }

    fn from(&mut self, i: &Instruction) -> Result<(Stage, Option<String>), BuildError> {
        if let Some(p) = i.flag("platform") {
            if p != "linux/amd64" {
                return Err(BuildError::Invalid(format!(
                    "--platform={p}: vessel builds linux/amd64 images only"
                )));
            }
        }
        let env = |n: &str| self.meta_args.get(n).cloned();
        let words = subst::words(&shell_text(i), self.escape, &env).map_err(BuildError::Subst)?;
        let (image, name) = match words.as_slice() {
            [img] => (img.clone(), None),
            [img, as_, name] if as_.eq_ignore_ascii_case("as") => (img.clone(), Some(name.clone())),
            _ => {
                return Err(BuildError::Invalid(
                    "FROM takes IMAGE or IMAGE AS NAME".into(),
                ))
            }
        };
        let (state, key) = self.base(&image)?;
        Ok((
            Stage {
                state,
                key,
                args: BTreeMap::new(),
                cmd_set: false,
            },
            name,
        ))
    }

    /// `scratch`, an earlier stage, or an image (pulled when missing); its
    /// state and the first cache key.
    fn base(&mut self, image: &str) -> Result<(State, String), BuildError> {
        if image.eq_ignore_ascii_case("scratch") {
            return Ok((State::scratch(), cache::base_key(None)));
        }
        if let Some(d) = self.stage_ref(image) {
            return Ok((d.state.clone(), d.key.clone()));
        }
        let (state, id) = self.image(image)?;
        Ok((state, cache::base_key(Some(&id.to_string()))))
    }

    fn stage_ref(&self, what: &str) -> Option<&StageDone> {
        if let Ok(n) = what.parse::<usize>() {
            return self.done.get(n).and_then(Option::as_ref);
        }
        self.done.iter().flatten().find(|d| {
            d.name
                .as_deref()
                .is_some_and(|n| n.eq_ignore_ascii_case(what))
        })
    }

    fn image(&mut self, what: &str) -> Result<(State, Digest), BuildError> {
        let store: &ImageStore = self.engine.images();
        let r = Reference::parse(what)
            .map_err(|e| BuildError::Invalid(format!("{what:?} is not an image reference: {e}")))?;
        let image = match store.image(&r, &Platform::linux_amd64()) {
            Ok(i) => i,
            Err(StoreError::NotFound(_)) => {
                let _ = writeln!(self.out.log, "Pulling {}", r.familiar());
                let mut ropts = self.opts.registry.clone();
                ropts.platform = Platform::linux_amd64();
                vessel_registry::pull(store, &r, &ropts).map_err(|e| BuildError::Pull {
                    reference: r.familiar(),
                    source: Box::new(e),
                })?;
                store
                    .image(&r, &Platform::linux_amd64())
                    .map_err(store_err("read the pulled image"))?
            }
            Err(e) => return Err(store_err("read the base image")(e)),
        };
        // Keep the base's blobs while we build on them.
        for d in
            std::iter::once(&image.manifest_digest).chain(std::iter::once(&image.config_digest))
        {
            self.lease.add(d).map_err(store_err("take a lease"))?;
        }
        let state = State::of_image(store, &image)?;
        for l in &state.layers {
            self.lease
                .add(&l.digest)
                .map_err(store_err("take a lease"))?;
        }
        Ok((state, image.config_digest))
    }

    /// A cached state for `key` whose layers are all present (leased).
    fn cached(&mut self, key: &str) -> Option<State> {
        if self.opts.no_cache {
            return None;
        }
        let state = self.cache.get(key)?;
        let content = self.engine.images().content();
        for l in &state.layers {
            if self.lease.add(&l.digest).is_err() || !content.exists(&l.digest) {
                return None;
            }
        }
        Some(state)
    }

    /// One step: from the cache, or by `run` on the state; then cached.
    fn step(
        &mut self,
        stage: &mut Stage,
        created_by: &str,
        extra: &[&str],
        layer_step: bool,
        run: impl FnOnce(&mut Self, &mut State) -> Result<(), BuildError>,
    ) -> Result<(), BuildError> {
        let key = cache::key(&stage.key, created_by, extra);
        if let Some(hit) = self.cached(&key) {
            if layer_step {
                self.built.cached_layers += 1;
                let _ = writeln!(self.out.log, "--> Using cache {}", &key[..12]);
            }
            stage.state = hit;
            stage.key = key;
            return Ok(());
        }
        let mut next = stage.state.clone();
        run(self, &mut next)?;
        if !layer_step {
            next.history(created_by, true);
        }
        self.cache.put(&key, &next)?;
        stage.state = next;
        stage.key = key;
        Ok(())
    }

    fn instruction(&mut self, stage: &mut Stage, i: &Instruction) -> Result<(), BuildError> {
        let escape = self.escape;
        let text = shell_text(i);
        let lookup = stage.lookup();
        let words = || subst::words(&text, escape, &lookup).map_err(BuildError::Subst);
        let word = || subst::word(&text, escape, &lookup).map_err(BuildError::Subst);
        let exec_or_words = || match &i.args {
            Args::Exec(v) => v
                .iter()
                .map(|s| subst::word(s, escape, &lookup).map_err(BuildError::Subst))
                .collect::<Result<Vec<_>, _>>(),
            Args::Shell(_) => words(),
        };
        let as_run = |state: &State| match &i.args {
            Args::Exec(v) => v.clone(),
            Args::Shell(s) => {
                let mut argv = ops::shell(state);
                argv.push(s.clone());
                argv
            }
        };
        match i.keyword {
            Keyword::From => unreachable!("FROM starts a stage"),
            Keyword::Arg => {
                let ws = words()?;
                drop(lookup);
                for w in ws {
                    let (k, default) = match w.split_once('=') {
                        Some((k, v)) => (k.to_string(), Some(v.to_string())),
                        None => (w, None),
                    };
                    let v = self
                        .opts
                        .build_args
                        .get(&k)
                        .cloned()
                        .or(default)
                        .or_else(|| self.meta_args.get(&k).cloned())
                        .unwrap_or_default();
                    stage.key = cache::key(&stage.key, &format!("ARG {k}={v}"), &[]);
                    stage.args.insert(k, v);
                }
                Ok(())
            }
            Keyword::Env | Keyword::Label => {
                let ws = words()?;
                let legacy = match ws.first() {
                    Some(f) if !f.contains('=') => {
                        let rest = text.trim_start()[text
                            .trim_start()
                            .find(char::is_whitespace)
                            .unwrap_or(text.len())..]
                            .trim();
                        Some(subst::word(rest, escape, &lookup).map_err(BuildError::Subst)?)
                    }
                    _ => None,
                };
                let pairs = ops::pairs(&ws, legacy.as_deref())?;
                drop(lookup);
                let by = format!(
                    "{} {}",
                    i.keyword,
                    pairs
                        .iter()
                        .map(|(k, v)| format!("{k}={v:?}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                );
                let env = i.keyword == Keyword::Env;
                self.step(stage, &by, &[], false, |_, s| {
                    if env {
                        ops::env(s, &pairs);
                    } else {
                        ops::label(s, &pairs);
                    }
                    Ok(())
                })
            }
            Keyword::Workdir | Keyword::User | Keyword::Stopsignal | Keyword::Maintainer => {
                let v = word()?.trim().to_string();
                drop(lookup);
                let kw = i.keyword;
                self.step(stage, &format!("{kw} {v}"), &[], false, |_, s| match kw {
                    Keyword::Workdir => ops::workdir(s, &v),
                    Keyword::User => ops::set_string(s, "User", &v),
                    Keyword::Stopsignal => ops::set_string(s, "StopSignal", &v),
                    _ => {
                        s.config["author"] = serde_json::json!(v);
                        Ok(())
                    }
                })
            }
            Keyword::Expose | Keyword::Volume => {
                let ws = exec_or_words()?;
                drop(lookup);
                let kw = i.keyword;
                self.step(
                    stage,
                    &format!("{kw} {}", ws.join(" ")),
                    &[],
                    false,
                    |_, s| {
                        if kw == Keyword::Expose {
                            ops::expose(s, &ws)
                        } else {
                            ops::volume(s, &ws)
                        }
                    },
                )
            }
            Keyword::Cmd | Keyword::Entrypoint | Keyword::Shell => {
                drop(lookup);
                let argv = match (i.keyword, &i.args) {
                    (Keyword::Shell, Args::Exec(v)) => v.clone(),
                    _ => as_run(&stage.state),
                };
                let kw = i.keyword;
                let by = format!("{kw} {}", serde_json::to_string(&argv).expect("JSON"));
                let cmd_set = stage.cmd_set;
                if kw == Keyword::Cmd {
                    stage.cmd_set = true;
                }
                self.step(stage, &by, &[], false, move |_, s| {
                    match kw {
                        Keyword::Cmd => ops::command(s, "Cmd", argv, true),
                        Keyword::Entrypoint => ops::command(s, "Entrypoint", argv, cmd_set),
                        _ => {
                            s.cfg().insert("Shell".into(), serde_json::json!(argv));
                        }
                    }
                    Ok(())
                })
            }
            Keyword::Run => {
                drop(lookup);
                let argv = as_run(&stage.state);
                // Build arguments reach RUN's environment (ENV wins).
                let env: Vec<String> = stage
                    .args
                    .iter()
                    .filter(|(k, _)| stage.state.env(k).is_none())
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                let by = format!("RUN {}", serde_json::to_string(&argv).expect("JSON"));
                let env_key = env.join("\n");
                self.step(stage, &by, &[&env_key], true, |ctx, s| {
                    let (digest, size) = crate::run::run(
                        ctx.engine,
                        s,
                        &mut ctx.lease,
                        &argv,
                        &env,
                        ctx.opts.network,
                        ctx.out.run.as_ref(),
                    )?;
                    ctx.built.runs += 1;
                    s.add_layer(digest, size, &by);
                    Ok(())
                })
            }
            Keyword::Copy | Keyword::Add => {
                let ws = exec_or_words()?;
                let workdir = stage.state.string("WorkingDir");
                drop(lookup);
                self.copy(stage, i, ws, workdir)
            }
        }
    }

    fn copy(
        &mut self,
        stage: &mut Stage,
        i: &Instruction,
        mut ws: Vec<String>,
        workdir: Option<String>,
    ) -> Result<(), BuildError> {
        let add = i.keyword == Keyword::Add;
        if ws.len() < 2 {
            return Err(BuildError::Invalid(format!(
                "{} needs a source and a destination",
                i.keyword
            )));
        }
        let dest_raw = ws.pop().expect("two words");
        if add {
            if let Some(u) = ws
                .iter()
                .find(|s| s.contains("://") || s.starts_with("git@"))
            {
                return Err(BuildError::Invalid(format!(
                    "ADD {u}: sources from URLs are not supported; download them in a RUN step or COPY them from the context"
                )));
            }
        }
        let dest_abs = if dest_raw.starts_with('/') {
            dest_raw.clone()
        } else {
            format!("{}/{dest_raw}", workdir.as_deref().unwrap_or("/"))
        };
        let dest = format!("/{}", clean(&dest_abs));
        let chown = i.flag("chown").map(str::to_string);
        let chmod = match i.flag("chmod") {
            Some(m) => Some(
                u32::from_str_radix(m, 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .ok_or_else(|| {
                        BuildError::Invalid(format!("--chmod={m} is not an octal mode"))
                    })?,
            ),
            None => None,
        };

        // Where from: the context, or a stage / image mounted read-only.
        let store = self.engine.images();
        let from = i.flag("from").map(str::to_string);
        let (from_state, from_id) = match &from {
            None => (None, None),
            Some(f) => {
                let state = match self.stage_ref(f) {
                    Some(d) => d.state.clone(),
                    None => self.image(f)?.0,
                };
                let id = state.id().to_string();
                (Some(state), Some(id))
            }
        };
        let view = match &from_state {
            Some(s) => Some(Mounted::new(store, s, &mut self.lease, true)?),
            None => None,
        };
        let root = match &view {
            Some(v) => Root::Image { dir: v.root() },
            None => Root::Context {
                dir: &self.context,
                ignore: &self.ignore,
            },
        };
        let mut items = Vec::new();
        for s in &ws {
            for src in context::select(root, s)? {
                let entries = context::entries(root, &src)?;
                items.push((src, entries));
            }
        }
        let many = items.len() > 1;
        if many && !dest_raw.ends_with('/') {
            return Err(BuildError::Invalid(format!(
                "with more than one source the destination must be a directory ending in /, not {dest_raw:?}"
            )));
        }
        let inputs = match &from_id {
            Some(id) => format!("from {id}"),
            None => context::digest(&items)?,
        };
        let by = format!(
            "{} {}{} {} in {dest}",
            i.keyword,
            chown
                .as_deref()
                .map(|c| format!("--chown={c} "))
                .unwrap_or_default(),
            from.as_deref()
                .map(|f| format!("--from={f}"))
                .unwrap_or_default(),
            ws.join(" "),
        );
        let extra = [inputs.as_str(), &format!("{chmod:?}")];
        self.step(stage, &by, &extra, true, |ctx, s| {
            let store = ctx.engine.images();
            let mut m = Mounted::new(store, s, &mut ctx.lease, false)?;
            let owner = match &chown {
                None => None,
                Some(c) => {
                    let u = vessel_engine::spec::user::UserDb::read(m.root())
                        .and_then(|db| db.resolve(c))
                        .map_err(|e| BuildError::Invalid(format!("--chown={c}: {e}")))?;
                    Some((u.uid, u.gid))
                }
            };
            // `.` and a trailing `/` name a directory (docker's rule).
            let dest_is_dir = dest_raw.ends_with('/')
                || dest_raw == "."
                || dest_raw.ends_with("/.")
                || many
                || items.iter().any(|(s, _)| s.meta.is_dir())
                || is_dir_in(m.root(), &dest);
            let spec = CopySpec {
                dest: dest.clone(),
                dest_is_dir,
                owner,
                mode: chmod,
                extract: add,
            };
            let tar_path = m.scratch_file("copy.tar");
            let f = File::create(&tar_path).map_err(BuildError::io("create", &tar_path))?;
            copy::write_tar(std::io::BufWriter::new(f), &items, &spec)?;
            let f = File::open(&tar_path).map_err(BuildError::io("read", &tar_path))?;
            vessel_image::apply::apply_layer(
                std::io::BufReader::new(f),
                m.root(),
                &vessel_image::apply::ApplyOptions {
                    same_owner: true,
                    expected_diff_id: None,
                },
            )
            .map_err(store_err("apply the copied files"))?;
            let upper = m.finish()?;
            let mut w = store
                .content()
                .writer()
                .map_err(store_err("write a layer"))?;
            vessel_image::diff::layer_from_upper(&upper, &mut w)
                .map_err(|e| BuildError::Layer(upper.clone(), e))?;
            let size = w.written();
            let digest = w
                .commit_leased(Some(size), None, &mut ctx.lease)
                .map_err(store_err("write a layer"))?;
            drop(m);
            s.add_layer(digest, size, &by);
            Ok(())
        })
    }
}

/// Whether `dest` is a directory inside the mounted root (resolved inside it).
fn is_dir_in(root: &Path, dest: &str) -> bool {
    use std::os::fd::AsFd;
    let Ok(r) = File::open(root) else {
        return false;
    };
    vessel_runtime::sys::resolve::open_in_root(
        r.as_fd(),
        Path::new(dest.trim_start_matches('/')),
        libc::O_PATH | libc::O_DIRECTORY,
    )
    .is_ok()
}
