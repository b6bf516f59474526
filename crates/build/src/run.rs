//! RUN: the command in a container made by vessel's engine from the
//! stage's image, attached, its output to the build's; the layer is the
//! diff of the container's writable layer.

use std::fs::File;

use vessel_engine::{Attach, CreateOptions, Engine, NetworkMode, Outcome, Stdio};
use vessel_image::gc::Lease;

use crate::error::BuildError;
use crate::state::State;

/// Run `argv` with the extra environment `env` in a container of `state`;
/// the digest and size of the layer of its changes.
pub fn run(
    engine: &Engine,
    state: &State,
    lease: &mut Lease,
    argv: &[String],
    env: &[String],
    network: NetworkMode,
    output: Option<&File>,
) -> Result<(vessel_image::Digest, u64), BuildError> {
    let store = engine.images();
    let target = state.write(store, lease)?;
    let opts = CreateOptions {
        image: format!("vessel-build@{}", target.digest),
        cmd: argv.to_vec(),
        // RUN ignores the image's ENTRYPOINT.
        entrypoint: Some(Vec::new()),
        env: env.to_vec(),
        network,
        // BuildKit's behaviour: what a RUN writes under a VOLUME path stays
        // in the layer (docker's classic builder lost it in a volume).
        no_image_volumes: true,
        ..Default::default()
    };
    let engine_err = |e| BuildError::Engine(Box::new(e));
    let record = engine.create(&opts).map_err(engine_err)?;
    let id = record.id.clone();
    let result = (|| {
        let devnull;
        let out = match output {
            Some(f) => f,
            None => {
                devnull = File::options()
                    .write(true)
                    .open("/dev/null")
                    .map_err(BuildError::io("open", "/dev/null"))?;
                &devnull
            }
        };
        let stdio = Stdio::to_file(out).map_err(engine_err)?;
        let attach = Attach::Attached {
            stdio,
            sig_proxy: true,
        };
        match engine.start(&id, attach).map_err(engine_err)? {
            Outcome::Exited(0) => {}
            Outcome::Exited(code) | Outcome::Running(code) => {
                return Err(BuildError::RunFailed {
                    command: format!("{argv:?}"),
                    code,
                })
            }
        }
        let upper = store.snapshots().upper_dir(&id);
        let mut w = store
            .content()
            .writer()
            .map_err(|e| BuildError::store("write a layer")(Box::new(e)))?;
        vessel_image::diff::layer_from_upper(&upper, &mut w)
            .map_err(|e| BuildError::Layer(upper.clone(), e))?;
        let size = w.written();
        let digest = w
            .commit_leased(Some(size), None, lease)
            .map_err(|e| BuildError::store("write a layer")(Box::new(e)))?;
        Ok((digest, size))
    })();
    let removed = engine.remove(&id, true);
    let layer = result?;
    removed.map_err(engine_err)?;
    Ok(layer)
}
