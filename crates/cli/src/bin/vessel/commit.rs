//! `vessel commit CONTAINER [REPOSITORY[:TAG]]`: a new image from a
//! container's changes — its image's layers plus one layer made from its
//! writable overlay layer (`vessel_image::diff::layer_from_upper`), with the
//! container's command, environment, working directory and user as the new
//! image's config (docker's behaviour).

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use serde_json::json;
use vessel_build::state::State;
use vessel_engine::{Engine, EngineConfig, Status};
use vessel_image::manifest::Platform;
use vessel_image::{catalog, Reference};

/// `vessel commit`.
#[derive(Debug, Args)]
pub struct CommitArgs {
    /// Commit message (the history entry's comment).
    #[arg(short = 'm', long)]
    pub message: Option<String>,
    /// Author.
    #[arg(short = 'a', long)]
    pub author: Option<String>,
    /// Do not pause a running container while its layer is read.
    #[arg(long = "pause", default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub pause: bool,
    /// The container.
    pub container: String,
    /// The new image's name; an untagged image when absent.
    pub repository: Option<String>,
}

/// `vessel commit`: prints the new image's ID.
pub fn commit(config: &EngineConfig, a: &CommitArgs) -> Result<ExitCode> {
    let engine = Engine::open(config.clone())?;
    let record = engine.inspect(&a.container)?;
    let name = a
        .repository
        .as_deref()
        .map(Reference::parse)
        .transpose()
        .with_context(|| format!("Invalid image name {:?}", a.repository))?;
    let images = engine.images();
    let info = catalog::lookup(images, &record.image_id)
        .with_context(|| format!("The image of container {} ({})", record.name, record.image))?
        .image()
        .clone();
    let target = info
        .targets
        .first()
        .cloned()
        .context("the container's image has no manifest")?;
    let image = images.image_of(target, &Platform::linux_amd64())?;
    let mut state = State::of_image(images, &image)?;
    let mut lease = images.lease()?;

    // docker pauses the container so that the layer is read consistently.
    let paused = a.pause && record.state.status == Status::Running;
    if paused {
        engine.pause(&record.id)?;
    }
    let upper = images.snapshots().upper_dir(&record.id);
    let layer = (|| -> Result<_> {
        let mut w = images.content().writer()?;
        vessel_image::diff::layer_from_upper(&upper, &mut w)?;
        let size = w.written();
        Ok((w.commit_leased(Some(size), None, &mut lease)?, size))
    })();
    if paused {
        engine.unpause(&record.id)?;
    }
    let (digest, size) =
        layer.with_context(|| format!("cannot read the layer of {}", record.name))?;

    let c = &record.config;
    let comment = a.message.clone().unwrap_or_default();
    state.add_layer(digest, size, &format!("vessel commit {}", record.name));
    if let Some(h) = state.config["history"]
        .as_array_mut()
        .and_then(|h| h.last_mut())
    {
        h["comment"] = json!(comment);
    }
    let cfg = &mut state.config["config"];
    cfg["Cmd"] = json!(c.cmd);
    cfg["Entrypoint"] = if c.entrypoint.is_empty() {
        json!(null)
    } else {
        json!(c.entrypoint)
    };
    cfg["Env"] = json!(c.env);
    cfg["WorkingDir"] = json!(c.working_dir);
    cfg["User"] = json!(c.user);
    state.config["created"] = json!(vessel_runtime::state::now_rfc3339());
    if let Some(author) = &a.author {
        state.config["author"] = json!(author);
    }
    let manifest = state.write(images, &mut lease)?;
    images.tags().update_index(|index| {
        match &name {
            Some(r) => index.retarget(vessel_image::tags::key(r), manifest.clone()),
            None => index.add_untagged(manifest.clone()),
        }
        Ok(())
    })?;
    drop(lease);
    println!("{}", state.id());
    Ok(ExitCode::SUCCESS)
}
