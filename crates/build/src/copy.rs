//! COPY and ADD: the tar of what they put into the image.
//!
//! The tar holds the selected files under their destination paths (no
//! entries for the destination's parents, so an existing `/tmp` keeps its
//! mode); the builder applies it with vessel-image's confined `apply_layer`
//! onto the stage's mounted root (so a symlink in the image resolves inside
//! it), and the layer is the diff of that overlay's upper directory. ADD of
//! a local tar archive (plain, gzip or zstd) extracts it into the
//! destination directory instead.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

use crate::context::{Entry, Source};
use crate::error::BuildError;

/// How the files are written.
#[derive(Debug, Clone, Default)]
pub struct CopySpec {
    /// The destination inside the image (absolute, cleaned).
    pub dest: String,
    /// Whether `dest` is a directory to copy into.
    pub dest_is_dir: bool,
    /// `--chown`, resolved.
    pub owner: Option<(u32, u32)>,
    /// `--chmod`.
    pub mode: Option<u32>,
    /// ADD: extract local tar archives.
    pub extract: bool,
}

fn tar_err(e: io::Error) -> BuildError {
    BuildError::Invalid(format!("cannot write the COPY archive: {e}"))
}

/// Write the tar of `items` per `spec` into `out`.
pub fn write_tar(
    out: impl Write,
    items: &[(Source, Vec<Entry>)],
    spec: &CopySpec,
) -> Result<(), BuildError> {
    let mut tar = tar::Builder::new(out);
    let dest = PathBuf::from(spec.dest.trim_start_matches('/'));
    for (source, entries) in items {
        if !source.meta.is_dir() && spec.extract && is_archive(&source.host) {
            extract(&mut tar, &source.host, &dest, spec)?;
            continue;
        }
        for e in entries {
            let path = if source.meta.is_dir() {
                dest.join(&e.rel)
            } else if spec.dest_is_dir {
                dest.join(source.name())
            } else {
                dest.clone()
            };
            append(&mut tar, &path, e, spec)?;
        }
    }
    tar.into_inner().map_err(tar_err)?;
    Ok(())
}

fn append<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &Path,
    e: &Entry,
    spec: &CopySpec,
) -> Result<(), BuildError> {
    let m = &e.meta;
    let ft = m.file_type();
    let mut h = tar::Header::new_gnu();
    let (uid, gid) = spec.owner.unwrap_or((0, 0));
    h.set_uid(u64::from(uid));
    h.set_gid(u64::from(gid));
    h.set_mtime(m.mtime().max(0) as u64);
    h.set_mode(if ft.is_symlink() {
        0o777
    } else {
        spec.mode.unwrap_or(m.mode() & 0o7777)
    });
    h.set_size(0);
    if ft.is_dir() {
        h.set_entry_type(tar::EntryType::Directory);
        tar.append_data(&mut h, path, io::empty()).map_err(tar_err)
    } else if ft.is_symlink() {
        let target =
            std::fs::read_link(&e.host).map_err(BuildError::io("read the link", &e.host))?;
        h.set_entry_type(tar::EntryType::Symlink);
        tar.append_link(&mut h, path, target).map_err(tar_err)
    } else if ft.is_file() {
        let f = File::open(&e.host).map_err(BuildError::io("read", &e.host))?;
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(m.len());
        tar.append_data(&mut h, path, f.take(m.len()))
            .map_err(tar_err)
    } else if ft.is_fifo() {
        h.set_entry_type(tar::EntryType::Fifo);
        tar.append_data(&mut h, path, io::empty()).map_err(tar_err)
    } else {
        // Devices and sockets are not copied from a context (docker neither).
        Ok(())
    }
}

/// Whether the file starts (after gzip/zstd) with a valid tar header.
pub fn is_archive(path: &Path) -> bool {
    let Ok(f) = File::open(path) else {
        return false;
    };
    let Ok(mut r) = vessel_image::apply::decompress(io::BufReader::new(f)) else {
        return false;
    };
    let mut block = [0u8; 512];
    if r.read_exact(&mut block).is_err() {
        return false;
    }
    let stored = std::str::from_utf8(&block[148..156])
        .ok()
        .map(|s| s.trim_matches(|c: char| c == '\0' || c == ' '))
        .and_then(|s| u32::from_str_radix(s, 8).ok());
    let sum: u32 = block
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(*b)
            }
        })
        .sum();
    stored == Some(sum) && block.iter().any(|b| *b != 0)
}

/// Re-emit the archive's entries under `dest`.
fn extract<W: Write>(
    tar: &mut tar::Builder<W>,
    archive: &Path,
    dest: &Path,
    spec: &CopySpec,
) -> Result<(), BuildError> {
    let bad = |what: String| BuildError::Invalid(format!("ADD {}: {what}", archive.display()));
    let f = File::open(archive).map_err(BuildError::io("read", archive))?;
    let r = vessel_image::apply::decompress(io::BufReader::new(f))
        .map_err(BuildError::io("read", archive))?;
    let mut a = tar::Archive::new(r);
    for entry in a.entries().map_err(BuildError::io("read", archive))? {
        let mut entry = entry.map_err(BuildError::io("read", archive))?;
        let path = entry
            .path()
            .map_err(BuildError::io("read", archive))?
            .into_owned();
        let inside = |p: &Path| -> Result<PathBuf, BuildError> {
            let mut out = dest.to_path_buf();
            for c in p.components() {
                match c {
                    Component::Normal(n) => out.push(n),
                    Component::CurDir | Component::RootDir => {}
                    _ => return Err(bad(format!("entry {} climbs out with '..'", p.display()))),
                }
            }
            Ok(out)
        };
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        if name.as_deref().is_some_and(|n| n.starts_with(".wh.")) {
            // A whiteout name would delete files of the image: not from ADD.
            continue;
        }
        let target = inside(&path)?;
        let mut h = entry.header().clone();
        if let Some((uid, gid)) = spec.owner {
            h.set_uid(u64::from(uid));
            h.set_gid(u64::from(gid));
        }
        let kind = h.entry_type();
        if kind.is_hard_link() {
            let link = entry
                .link_name()
                .map_err(BuildError::io("read", archive))?
                .ok_or_else(|| bad("hard link without a target".into()))?
                .into_owned();
            tar.append_link(&mut h, &target, inside(&link)?)
                .map_err(tar_err)?;
        } else if kind.is_symlink() {
            let link = entry
                .link_name()
                .map_err(BuildError::io("read", archive))?
                .ok_or_else(|| bad("symlink without a target".into()))?
                .into_owned();
            tar.append_link(&mut h, &target, link).map_err(tar_err)?;
        } else if kind.is_pax_global_extensions() || kind.is_pax_local_extensions() {
            continue;
        } else {
            tar.append_data(&mut h, &target, &mut entry)
                .map_err(tar_err)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::{entries, select, Root};
    use crate::dockerignore::Ignore;

    fn names(tar_bytes: &[u8]) -> Vec<(String, u64)> {
        let mut a = tar::Archive::new(tar_bytes);
        a.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().display().to_string(),
                    e.header().uid().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn files_dirs_and_archives_land_under_dest() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        std::fs::create_dir_all(dir.join("d/sub")).unwrap();
        std::fs::write(dir.join("f.txt"), "f").unwrap();
        std::fs::write(dir.join("d/sub/g"), "g").unwrap();
        let mut inner = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        inner.append_data(&mut h, "in/x", &b"x"[..]).unwrap();
        std::fs::write(dir.join("a.tar"), inner.into_inner().unwrap()).unwrap();
        let dir = std::fs::canonicalize(dir).unwrap();
        let ig = Ignore::default();
        let root = Root::Context {
            dir: &dir,
            ignore: &ig,
        };
        let items: Vec<_> = ["f.txt", "d", "a.tar"]
            .iter()
            .map(|s| {
                let src = select(root, s).unwrap().remove(0);
                let e = entries(root, &src).unwrap();
                (src, e)
            })
            .collect();
        let spec = CopySpec {
            dest: "/app/".into(),
            dest_is_dir: true,
            owner: Some((7, 8)),
            extract: true,
            ..Default::default()
        };
        let mut out = Vec::new();
        write_tar(&mut out, &items, &spec).unwrap();
        let n = names(&out);
        let paths: Vec<&str> = n.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, ["app/f.txt", "app/sub", "app/sub/g", "app/in/x"]);
        assert!(n.iter().all(|(_, uid)| *uid == 7));
        assert!(is_archive(&dir.join("a.tar")) && !is_archive(&dir.join("f.txt")));

        // A file to a file path; ADD of a tar that climbs out is refused.
        let spec = CopySpec {
            dest: "/etc/renamed".into(),
            ..Default::default()
        };
        let mut out = Vec::new();
        write_tar(&mut out, &items[..1], &spec).unwrap();
        assert_eq!(names(&out), [("etc/renamed".to_string(), 0)]);
    }

    #[test]
    fn add_refuses_archives_that_climb_out() {
        let tmp = tempfile::tempdir().unwrap();
        let mut evil = Vec::new();
        // Written raw: the tar crate refuses to write '..' itself.
        let mut h = tar::Header::new_old();
        h.as_old_mut().name[..9].copy_from_slice(b"../escape");
        h.set_size(0);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        evil.extend_from_slice(h.as_bytes());
        evil.extend_from_slice(&[0u8; 1024]);
        let p = tmp.path().join("evil.tar");
        std::fs::write(&p, &evil).unwrap();
        let dir = std::fs::canonicalize(tmp.path()).unwrap();
        let ig = Ignore::default();
        let root = Root::Context {
            dir: &dir,
            ignore: &ig,
        };
        let src = select(root, "evil.tar").unwrap().remove(0);
        let e = entries(root, &src).unwrap();
        let spec = CopySpec {
            dest: "/x/".into(),
            dest_is_dir: true,
            extract: true,
            ..Default::default()
        };
        let err = write_tar(Vec::new(), &[(src, e)], &spec).unwrap_err();
        assert!(err.to_string().contains("climbs out"), "{err}");
    }
}
