//! `image prune`: drop untagged images no container uses (with `all`, every
//! image no container uses), then collect the garbage.

use std::collections::{BTreeMap, BTreeSet};

use crate::catalog::{list, CatalogError};
use crate::digest::Digest;
use crate::gc::{collect, Collected, GcError};
use crate::remove::Removed;
use crate::store::ImageStore;
use crate::tags::{key, TagError};

/// Failures of `prune`.
#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    /// Listing images failed.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The tag store failed.
    #[error(transparent)]
    Tags(#[from] TagError),
    /// Collection failed.
    #[error(transparent)]
    Gc(#[from] GcError),
}

/// Prune images; `users` maps image IDs to the containers using them.
/// Returns what was untagged and deleted, and what the collector freed.
pub fn prune(
    store: &ImageStore,
    all: bool,
    users: &BTreeMap<Digest, Vec<String>>,
) -> Result<(Vec<Removed>, Collected), PruneError> {
    let (images, _) = list(store)?;
    let doomed: Vec<_> = images
        .into_iter()
        .filter(|i| !users.contains_key(&i.id) && (all || i.names.is_empty()))
        .collect();
    let removed = store.tags().update_index(|index| {
        let mut out = Vec::new();
        for image in &doomed {
            for n in &image.names {
                // Only if it still points where it did when listed.
                let current = index.names.get(&key(n)).map(|t| t.digest.clone());
                if image
                    .targets
                    .iter()
                    .any(|t| Some(&t.digest) == current.as_ref())
                {
                    index.names.remove(&key(n));
                    out.push(Removed::Untagged(n.familiar()));
                }
            }
            let named = image.targets.iter().any(|t| index.is_named(&t.digest));
            if !named {
                index
                    .untagged
                    .retain(|t| !image.targets.iter().any(|i| i.digest == t.digest));
                out.push(Removed::Deleted(image.id.clone()));
            }
        }
        Ok(out)
    })?;
    let in_use: BTreeSet<Digest> = users.keys().cloned().collect();
    let collected = collect(store, &in_use)?;
    Ok((removed, collected))
}
