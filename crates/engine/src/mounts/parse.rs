//! `-v`/`--volume` and `--mount` values (docker's syntax). Every error
//! names the flag and the value; nothing here touches the filesystem.

use std::collections::BTreeMap;

use super::{MountKind, MountPoint};
use crate::error::{EngineError, Result};
use crate::record::TmpfsMount;
use crate::volumes::validate_name;

/// What one `--mount` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountRequest {
    /// A bind mount or a volume.
    Point(MountPoint),
    /// A tmpfs (the same thing `--tmpfs` makes).
    Tmpfs(TmpfsMount),
}

fn invalid(option: &'static str, value: &str, reason: impl std::fmt::Display) -> EngineError {
    EngineError::InvalidOption {
        option,
        reason: format!("{value:?}: {reason}"),
    }
}

/// A container path: absolute, no `..`, not `/`; `.` and repeated or
/// trailing slashes are dropped.
pub fn destination(option: &'static str, value: &str, path: &str) -> Result<String> {
    if path.is_empty() {
        return Err(invalid(option, value, "the container path is empty"));
    }
    if !path.starts_with('/') {
        return Err(invalid(
            option,
            value,
            format!("the container path {path:?} is not absolute"),
        ));
    }
    let mut clean = String::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                return Err(invalid(
                    option,
                    value,
                    format!("the container path {path:?} contains .."),
                ))
            }
            c => {
                clean.push('/');
                clean.push_str(c);
            }
        }
    }
    if clean.is_empty() {
        return Err(invalid(option, value, "the container path cannot be /"));
    }
    Ok(clean)
}

fn host_path(option: &'static str, value: &str, path: &str) -> Result<String> {
    destination(option, value, path).map_err(|_| {
        invalid(
            option,
            value,
            format!("the host path {path:?} must be absolute, without .."),
        )
    })
}

fn point(kind: MountKind, source: String, destination: String) -> MountPoint {
    MountPoint {
        anonymous: kind == MountKind::Volume && source.is_empty(),
        kind,
        source,
        destination,
        read_only: false,
        propagation: None,
        no_copy: false,
        relabel: None,
        labels: BTreeMap::new(),
    }
}

const PROPAGATIONS: &[&str] = &[
    "private", "rprivate", "shared", "rshared", "slave", "rslave",
];

/// `-v [SOURCE:]DEST[:OPTIONS]`: SOURCE absolute is a bind mount, else a
/// volume name; no SOURCE is an anonymous volume. OPTIONS: `ro|rw`,
/// `z|Z`, a propagation (binds), `nocopy` (volumes), docker's consistency
/// words (ignored).
pub fn volume(value: &str) -> Result<MountPoint> {
    const V: &str = "-v";
    if value.contains('\0') {
        return Err(invalid(V, value, "contains a NUL byte"));
    }
    let parts: Vec<&str> = value.split(':').collect();
    let (source, dest, options) = match parts.as_slice() {
        [d] => ("", *d, ""),
        [s, d] => (*s, *d, ""),
        [s, d, o] => (*s, *d, *o),
        _ => {
            return Err(invalid(
                V,
                value,
                "too many colons (expected [SOURCE:]DEST[:OPTIONS])",
            ))
        }
    };
    if parts.len() > 1 && source.is_empty() {
        return Err(invalid(
            V,
            value,
            "the source (host path or volume name) is empty",
        ));
    }
    let dest = destination(V, value, dest)?;
    let mut m = if source.is_empty() {
        point(MountKind::Volume, String::new(), dest)
    } else if source.starts_with('/') {
        point(MountKind::Bind, host_path(V, value, source)?, dest)
    } else {
        validate_name(source).map_err(|_| {
            invalid(V, value, format!(
                "{source:?} is neither an absolute host path nor a volume name ([a-zA-Z0-9][a-zA-Z0-9_.-]+)"
            ))
        })?;
        point(MountKind::Volume, source.to_owned(), dest)
    };
    let (mut access, mut label) = (None, None);
    for o in options.split(',') {
        let slot = match o {
            "ro" | "rw" => &mut access,
            "z" | "Z" => &mut label,
            p if PROPAGATIONS.contains(&p) => {
                if m.kind != MountKind::Bind {
                    return Err(invalid(
                        V,
                        value,
                        format!("{p} applies to bind mounts only"),
                    ));
                }
                &mut m.propagation
            }
            "nocopy" => {
                if m.kind != MountKind::Volume {
                    return Err(invalid(V, value, "nocopy applies to volumes only"));
                }
                m.no_copy = true;
                continue;
            }
            "consistent" | "cached" | "delegated" => continue, // macOS-only, as docker
            "" if options.is_empty() => continue,
            other => return Err(invalid(V, value, format!("unknown option {other:?}"))),
        };
        if slot.replace(o.to_owned()).is_some() {
            return Err(invalid(
                V,
                value,
                format!("conflicting or repeated option {o:?}"),
            ));
        }
    }
    m.read_only = access.as_deref() == Some("ro");
    m.relabel = label;
    Ok(m)
}

/// docker's `--mount` fields: comma-separated, each may be double-quoted
/// (`""` inside is a quote), as Go's encoding/csv reads them.
fn csv_fields(value: &str) -> std::result::Result<Vec<String>, &'static str> {
    let mut fields = Vec::new();
    let mut chars = value.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => return Err("unterminated quote"),
                }
            }
            if !matches!(chars.peek(), None | Some(',')) {
                return Err("text after a closing quote");
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                if c == '"' {
                    return Err("a quote inside an unquoted field");
                }
                field.push(c);
                chars.next();
            }
        }
        fields.push(field);
        if chars.next().is_none() {
            return Ok(fields);
        }
    }
}

fn boolean(value: &str, key: &str, v: Option<&str>) -> Result<bool> {
    match v.map(str::to_ascii_lowercase).as_deref() {
        None | Some("true" | "1") => Ok(true),
        Some("false" | "0") => Ok(false),
        Some(other) => Err(invalid(
            "--mount",
            value,
            format!("{key}={other} is not true or false"),
        )),
    }
}

/// `--mount type=bind|volume|tmpfs,source=…,target=…,readonly,…`.
pub fn mount(value: &str) -> Result<MountRequest> {
    const M: &str = "--mount";
    if value.contains('\0') {
        return Err(invalid(M, value, "contains a NUL byte"));
    }
    let fields = csv_fields(value).map_err(|r| invalid(M, value, r))?;
    let mut typ = "volume".to_owned();
    let (mut source, mut target, mut read_only) = (None, None, false);
    let mut propagation = None;
    let (mut no_copy, mut labels) = (false, BTreeMap::new());
    let mut tmpfs_opts = Vec::new();
    // Which type's own keys were used, to refuse a mix (`tmpfs-size` on a bind).
    let mut typed_keys: Vec<(&'static str, String)> = Vec::new();
    for f in &fields {
        let (key, v) = match f.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v)),
            None => (f.trim().to_ascii_lowercase(), None),
        };
        let need = |v: Option<&str>| -> Result<String> {
            match v {
                Some(v) if !v.is_empty() => Ok(v.to_owned()),
                _ => Err(invalid(M, value, format!("{key} needs a value"))),
            }
        };
        match key.as_str() {
            "type" => typ = need(v)?,
            "source" | "src" => source = Some(need(v)?),
            "target" | "destination" | "dst" => target = Some(need(v)?),
            "readonly" | "ro" => read_only = boolean(value, &key, v)?,
            "consistency" => {}
            "bind-propagation" => {
                let p = need(v)?;
                if !PROPAGATIONS.contains(&p.as_str()) {
                    return Err(invalid(M, value, format!("unknown bind-propagation {p:?}")));
                }
                propagation = Some(p);
                typed_keys.push(("bind", key.clone()));
            }
            "bind-nonrecursive" | "bind-recursive" | "bind-create-mountpoint" => {
                return Err(invalid(
                    M,
                    value,
                    format!("{key} is not supported by vessel"),
                ))
            }
            "volume-nocopy" => {
                no_copy = boolean(value, &key, v)?;
                typed_keys.push(("volume", key.clone()));
            }
            "volume-label" => {
                let l = need(v)?;
                let (k, lv) = l.split_once('=').unwrap_or((&l, ""));
                labels.insert(k.to_owned(), lv.to_owned());
                typed_keys.push(("volume", key.clone()));
            }
            "volume-driver" => {
                if need(v)? != "local" {
                    return Err(invalid(M, value, "the only volume driver is \"local\""));
                }
                typed_keys.push(("volume", key.clone()));
            }
            "volume-opt" | "volume-subpath" => {
                return Err(invalid(
                    M,
                    value,
                    format!("{key} is not supported (vessel's volumes are plain directories)"),
                ))
            }
            "tmpfs-size" => {
                let s = need(v)?;
                let digits = s.trim_end_matches(['k', 'K', 'm', 'M', 'g', 'G', '%']);
                if digits.is_empty()
                    || !digits.bytes().all(|b| b.is_ascii_digit())
                    || s.len() - digits.len() > 1
                {
                    return Err(invalid(
                        M,
                        value,
                        format!("tmpfs-size {s:?} is not a size (e.g. 64m)"),
                    ));
                }
                tmpfs_opts.push(format!("size={s}"));
                typed_keys.push(("tmpfs", key.clone()));
            }
            "tmpfs-mode" => {
                let s = need(v)?;
                if s.len() > 4 || !s.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
                    return Err(invalid(
                        M,
                        value,
                        format!("tmpfs-mode {s:?} is not an octal mode"),
                    ));
                }
                tmpfs_opts.push(format!("mode={s}"));
                typed_keys.push(("tmpfs", key.clone()));
            }
            "" => return Err(invalid(M, value, "empty field")),
            other => return Err(invalid(M, value, format!("unknown key {other:?}"))),
        }
    }
    if let Some((_, k)) = typed_keys.iter().find(|(t, _)| *t != typ) {
        return Err(invalid(
            M,
            value,
            format!("{k} does not apply to type={typ}"),
        ));
    }
    let dest = destination(M, value, target.as_deref().unwrap_or("")).map_err(|_| {
        invalid(
            M,
            value,
            "target must be an absolute container path, not /, without ..",
        )
    })?;
    match typ.as_str() {
        "bind" => {
            let src = source.ok_or_else(|| invalid(M, value, "type=bind needs a source"))?;
            let mut m = point(MountKind::Bind, host_path(M, value, &src)?, dest);
            m.read_only = read_only;
            m.propagation = propagation;
            Ok(MountRequest::Point(m))
        }
        "volume" => {
            let name = source.unwrap_or_default();
            if !name.is_empty() {
                validate_name(&name).map_err(|e| invalid(M, value, e))?;
            }
            let mut m = point(MountKind::Volume, name, dest);
            m.read_only = read_only;
            m.no_copy = no_copy;
            m.labels = labels;
            Ok(MountRequest::Point(m))
        }
        "tmpfs" => {
            if source.is_some() {
                return Err(invalid(M, value, "type=tmpfs takes no source"));
            }
            if read_only {
                tmpfs_opts.push("ro".into());
            }
            Ok(MountRequest::Tmpfs(TmpfsMount {
                destination: dest,
                options: tmpfs_opts,
            }))
        }
        other => Err(invalid(
            M,
            value,
            format!("unknown type {other:?} (bind, volume or tmpfs)"),
        )),
    }
}

#[cfg(test)]
mod tests;
