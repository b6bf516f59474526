//! An image's history, from its config: one entry per step, newest first,
//! each non-empty step paired with its layer (so with its size).

use crate::catalog::ImageInfo;
use crate::digest::Digest;

/// One step of an image's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// RFC 3339 time, if recorded.
    pub created: Option<String>,
    /// The instruction that made it.
    pub created_by: String,
    /// Its comment.
    pub comment: String,
    /// The layer it added (`None` for a step that changed only the config).
    pub layer: Option<Digest>,
    /// That layer's size as stored (0 for none).
    pub size: u64,
}

/// The history of `image`, newest step first. Steps marked `empty_layer`
/// get no layer; the others take the layers in order. An image without
/// history (or with fewer non-empty steps than layers) gets one synthetic
/// step per unexplained layer, dated with the image.
pub fn history(image: &ImageInfo) -> Vec<Step> {
    let layers: Vec<(Digest, u64)> = image
        .manifest
        .layers()
        .iter()
        .filter_map(|l| Some((crate::manifest::descriptor_digest(l).ok()?, l.size())))
        .collect();
    let mut next = layers.iter();
    let mut out = Vec::new();
    for h in image.config.history().iter().flatten() {
        let layer = if h.empty_layer().unwrap_or(false) {
            None
        } else {
            next.next()
        };
        out.push(Step {
            created: h.created().clone(),
            created_by: h.created_by().clone().unwrap_or_default(),
            comment: h.comment().clone().unwrap_or_default(),
            layer: layer.map(|(d, _)| d.clone()),
            size: layer.map_or(0, |(_, s)| *s),
        });
    }
    for (d, s) in next {
        out.push(Step {
            created: image.created().map(str::to_string),
            created_by: String::new(),
            comment: String::new(),
            layer: Some(d.clone()),
            size: *s,
        });
    }
    out.reverse();
    out
}
