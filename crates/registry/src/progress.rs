//! Per-blob progress reports, for the CLI's bars. Calls come from several
//! transfer threads at once, so implementations are `Sync`.

use vessel_image::Digest;

/// Which way a blob goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Pulled from the registry.
    Download,
    /// Pushed to the registry.
    Upload,
}

/// How a blob's transfer ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Transferred and verified.
    Done,
    /// Already there (in the store, or in the registry): nothing sent.
    Exists,
    /// Mounted in the registry from another repository.
    Mounted(String),
    /// Failed (the operation's error says why).
    Failed,
}

/// Receives per-blob progress. Every method has an empty default.
pub trait Progress: Send + Sync {
    /// A blob of `size` bytes is about to be transferred (or checked).
    fn begin(&self, _digest: &Digest, _size: u64, _direction: Direction) {}
    /// `done` bytes of it are through (a running total).
    fn advance(&self, _digest: &Digest, _done: u64) {}
    /// It ended.
    fn end(&self, _digest: &Digest, _outcome: Outcome) {}
    /// A line about the operation as a whole (resolving, writing manifest).
    fn note(&self, _message: &str) {}
}

/// Reports nothing (`-q`, and libraries' default).
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Progress for Silent {}
