//! The image a stage has built so far: its config (kept as JSON, so fields
//! vessel does not know survive from the base image) and its layers.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use vessel_image::gc::Lease;
use vessel_image::manifest::{OCI_CONFIG, OCI_LAYER, OCI_MANIFEST};
use vessel_image::tags::Target;
use vessel_image::{Digest, ImageStore};

use crate::error::BuildError;

/// One layer of the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layer {
    /// Media type.
    #[serde(rename = "mediaType")]
    pub media_type: String,
    /// Blob digest.
    pub digest: Digest,
    /// Blob size.
    pub size: u64,
}

/// A stage's image: config + layers (what a cache entry stores).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// The whole image config.
    pub config: Value,
    /// The manifest's layers, bottom first.
    pub layers: Vec<Layer>,
}

impl State {
    /// `FROM scratch`.
    pub fn scratch() -> State {
        State {
            config: json!({
                "architecture": "amd64",
                "os": "linux",
                "config": {},
                "rootfs": {"type": "layers", "diff_ids": []},
                "history": [],
            }),
            layers: Vec::new(),
        }
    }

    /// A base image from the store.
    pub fn of_image(store: &ImageStore, image: &vessel_image::Image) -> Result<State, BuildError> {
        let data = store
            .content()
            .read_blob(&image.config_digest, vessel_image::manifest::MAX_JSON_BLOB)
            .map_err(|e| BuildError::store("read the base image's config")(Box::new(e)))?;
        let config: Value = serde_json::from_slice(&data)
            .map_err(|e| BuildError::store("read the base image's config")(Box::new(e)))?;
        let layers = image
            .manifest
            .layers()
            .iter()
            .map(|l| {
                Ok(Layer {
                    media_type: vessel_image::manifest::media_type_str(l.media_type()),
                    digest: vessel_image::manifest::descriptor_digest(l)
                        .map_err(|e| BuildError::store("read the base image")(Box::new(e)))?,
                    size: l.size(),
                })
            })
            .collect::<Result<_, BuildError>>()?;
        Ok(State { config, layers })
    }

    /// The `config` object (docker's container config), created if missing.
    pub fn cfg(&mut self) -> &mut Map<String, Value> {
        let root = self.config.as_object_mut().expect("config is an object");
        let c = root.entry("config").or_insert_with(|| json!({}));
        if !c.is_object() {
            *c = json!({});
        }
        c.as_object_mut().expect("just made an object")
    }

    /// A string list of the config (`Env`, `Cmd`, ...).
    pub fn list(&self, key: &str) -> Vec<String> {
        self.config["config"][key]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A string field of the config.
    pub fn string(&self, key: &str) -> Option<String> {
        self.config["config"][key].as_str().map(str::to_string)
    }

    /// The value of environment variable `name` in the config's `Env`.
    pub fn env(&self, name: &str) -> Option<String> {
        self.list("Env").into_iter().rev().find_map(|e| {
            let (k, v) = e.split_once('=')?;
            (k == name).then(|| v.to_string())
        })
    }

    /// Record a step in the history (and the config's `created`).
    pub fn history(&mut self, created_by: &str, empty_layer: bool) {
        let now = vessel_image::time::now_rfc3339();
        let root = self.config.as_object_mut().expect("config is an object");
        root.insert("created".into(), json!(now));
        let mut entry =
            json!({"created": now, "created_by": created_by, "comment": "vessel build"});
        if empty_layer {
            entry["empty_layer"] = json!(true);
        }
        match root.get_mut("history").and_then(Value::as_array_mut) {
            Some(h) => h.push(entry),
            None => {
                root.insert("history".into(), json!([entry]));
            }
        }
    }

    /// Add an uncompressed layer (its digest is its diff ID).
    pub fn add_layer(&mut self, digest: Digest, size: u64, created_by: &str) {
        let root = self.config.as_object_mut().expect("config is an object");
        let rootfs = root
            .entry("rootfs")
            .or_insert_with(|| json!({"type": "layers", "diff_ids": []}));
        match rootfs.get_mut("diff_ids").and_then(Value::as_array_mut) {
            Some(d) => d.push(json!(digest)),
            None => rootfs["diff_ids"] = json!([digest]),
        }
        self.layers.push(Layer {
            media_type: OCI_LAYER.into(),
            digest,
            size,
        });
        self.history(created_by, false);
    }

    /// The config as stored (sorted keys: the same state, the same bytes).
    pub fn config_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.config).expect("JSON serializes")
    }

    /// The image ID this state would have.
    pub fn id(&self) -> Digest {
        Digest::of(&self.config_bytes())
    }

    /// Write config and manifest into the store, kept by `lease`; the
    /// manifest's target.
    pub fn write(&self, store: &ImageStore, lease: &mut Lease) -> Result<Target, BuildError> {
        let config = self.config_bytes();
        let put = |data: &[u8], lease: &mut Lease| {
            store
                .content()
                .write_blob_leased(data, lease)
                .map_err(|e| BuildError::store("write the image")(Box::new(e)))
        };
        let id = put(&config, lease)?;
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": id, "size": config.len()},
            "layers": self.layers,
        });
        let manifest = serde_json::to_vec(&manifest).expect("JSON serializes");
        Ok(Target {
            media_type: OCI_MANIFEST.into(),
            digest: put(&manifest, lease)?,
            size: manifest.len() as u64,
        })
    }
}
