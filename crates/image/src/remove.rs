//! `rmi`: remove names, and images when no name is left.
//!
//! Docker's rules. A name is untagged; if it was the image's last name the
//! image is deleted — unless a container uses it: then the removal is
//! refused, or with `force` the image stays as an untagged image (docker's
//! dangling `<none>`), kept for the container. An image ID removes every
//! name of the image; several names need `force`. All changes are one
//! update of `index.json`; the blobs and unpacked layers of deleted images
//! become garbage for [`crate::gc::collect`], which the caller runs next.

use std::collections::BTreeMap;

use crate::catalog::{lookup, CatalogError, Lookup};
use crate::digest::Digest;
use crate::reference::Reference;
use crate::store::ImageStore;
use crate::tags::{key, TagError};

/// Why an image was not removed.
#[derive(Debug, thiserror::Error)]
pub enum RemoveError {
    /// Not found, ambiguous, or unreadable.
    #[error(transparent)]
    Lookup(#[from] CatalogError),
    /// A container uses the image.
    #[error("Cannot remove {what}: container {container} uses image {id} (stop and remove it, or force the removal to untag only)")]
    InUse {
        /// What the user named.
        what: String,
        /// A container using it.
        container: String,
        /// The image's short ID.
        id: String,
    },
    /// An ID names an image with several names.
    #[error("Cannot remove image {id}: it is referenced by several names ({}); remove them one by one or force the removal", names.join(", "))]
    SeveralNames {
        /// The short ID.
        id: String,
        /// Its names.
        names: Vec<String>,
    },
    /// The tag store failed.
    #[error(transparent)]
    Tags(#[from] TagError),
}

/// What a removal did, in docker's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removed {
    /// A name was removed (`Untagged: busybox:latest`).
    Untagged(String),
    /// An image lost its last name and is deleted (`Deleted: sha256:...`).
    Deleted(Digest),
}

/// Remove what `what` names (a name, or an image ID or unique prefix).
/// `users` maps image IDs to the containers that use them.
pub fn remove(
    store: &ImageStore,
    what: &str,
    force: bool,
    users: &BTreeMap<Digest, Vec<String>>,
) -> Result<Vec<Removed>, RemoveError> {
    let found = lookup(store, what)?;
    let image = found.image().clone();
    let user = users.get(&image.id).and_then(|u| u.first()).cloned();
    let in_use = |container: String| RemoveError::InUse {
        what: what.to_string(),
        container,
        id: image.id.short().to_string(),
    };
    let doomed: Vec<Reference> = match &found {
        Lookup::Name(r, _) => {
            let last = image.names.iter().all(|n| key(n) == key(r));
            if last && !force {
                if let Some(c) = user.clone() {
                    return Err(in_use(c));
                }
            }
            vec![r.clone()]
        }
        Lookup::Id(_) => {
            if !force {
                if let Some(c) = user.clone() {
                    return Err(in_use(c));
                }
                if image.names.len() > 1 {
                    return Err(RemoveError::SeveralNames {
                        id: image.id.short().to_string(),
                        names: image.names.iter().map(|n| n.familiar()).collect(),
                    });
                }
            }
            image.names.clone()
        }
    };
    let keep = user.is_some();
    if let (true, Some(c)) = (doomed.is_empty(), user.clone()) {
        // An untagged image a container uses: there is nothing to untag.
        return Err(in_use(c));
    }
    let delete_all = matches!(found, Lookup::Id(_));
    let out = store.tags().update_index(|index| {
        let mut out = Vec::new();
        let mut targets = Vec::new();
        for r in &doomed {
            if let Some(t) = index.names.remove(&key(r)) {
                targets.push(t);
                out.push(Removed::Untagged(r.familiar()));
            }
        }
        let still_named = image.targets.iter().any(|t| index.is_named(&t.digest));
        if still_named {
            return Ok(out);
        }
        if keep {
            for t in targets {
                index.add_untagged(t);
            }
        } else {
            let before = index.untagged.len();
            index
                .untagged
                .retain(|t| !image.targets.iter().any(|i| i.digest == t.digest));
            if !out.is_empty() || delete_all || index.untagged.len() != before {
                out.push(Removed::Deleted(image.id.clone()));
            }
        }
        Ok(out)
    })?;
    Ok(out)
}
