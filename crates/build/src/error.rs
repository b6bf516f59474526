//! What can go wrong in a build. Every failure of an instruction is wrapped
//! in [`BuildError::Step`], which names the Containerfile, the line and the
//! instruction; the cause follows as `#[source]`.

use std::io;
use std::path::PathBuf;

use crate::context::ContextError;
use crate::dockerignore::IgnoreError;
use crate::parse::ParseError;
use crate::subst::SubstError;

/// Failures of `vessel build`.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A file could not be read or written.
    #[error("Cannot {op} {path}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// The system's reason.
        #[source]
        source: io::Error,
    },
    /// The Containerfile does not parse.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// `.dockerignore` does not parse.
    #[error(transparent)]
    Ignore(#[from] IgnoreError),
    /// An instruction failed; the cause is the source.
    #[error("{file}:{line}: {instruction}")]
    Step {
        /// The Containerfile.
        file: String,
        /// Its line.
        line: usize,
        /// The instruction as written (shortened).
        instruction: String,
        /// Why.
        #[source]
        source: Box<BuildError>,
    },
    /// An instruction's arguments are wrong.
    #[error("{0}")]
    Invalid(String),
    /// Variable substitution failed.
    #[error("Cannot substitute variables")]
    Subst(#[source] SubstError),
    /// A COPY/ADD source is unusable.
    #[error(transparent)]
    Context(#[from] ContextError),
    /// RUN's command exited with a non-zero code.
    #[error("The command {command} returned a non-zero code: {code}")]
    RunFailed {
        /// The command, as run.
        command: String,
        /// Its exit code.
        code: i32,
    },
    /// The container for a RUN could not be created or run.
    #[error("Cannot run the container")]
    Engine(#[source] Box<vessel_engine::EngineError>),
    /// A base image could not be pulled.
    #[error("Cannot pull {reference}")]
    Pull {
        /// What was pulled.
        reference: String,
        /// Why.
        #[source]
        source: Box<vessel_registry::RegistryError>,
    },
    /// The image store failed.
    #[error("Image store: {what}")]
    Store {
        /// What was being done.
        what: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A layer could not be made from a container's changes.
    #[error("Cannot make a layer from {0}")]
    Layer(PathBuf, #[source] vessel_image::diff::DiffError),
    /// `--target` names no stage.
    #[error("Target stage {0:?} is not in the Containerfile")]
    NoTarget(String),
    /// There is no FROM.
    #[error("{0}: no FROM instruction (a build starts with FROM, after optional ARGs)")]
    NoFrom(String),
}

impl BuildError {
    /// Wrap any store-side error with what was being done.
    pub fn store(
        what: impl Into<String>,
    ) -> impl FnOnce(Box<dyn std::error::Error + Send + Sync>) -> BuildError {
        let what = what.into();
        move |source| BuildError::Store { what, source }
    }

    /// An I/O error on `path`.
    pub fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> BuildError {
        let path = path.into();
        move |source| BuildError::Io { op, path, source }
    }
}
