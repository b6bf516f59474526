//! The instructions that only change the image config (no layer): ENV,
//! LABEL, WORKDIR, USER, EXPOSE, VOLUME, CMD, ENTRYPOINT, SHELL, STOPSIGNAL,
//! MAINTAINER. Their arguments arrive substituted (where docker substitutes).

use serde_json::{json, Value};

use crate::dockerignore::clean;
use crate::error::BuildError;
use crate::state::State;

fn invalid(msg: impl Into<String>) -> BuildError {
    BuildError::Invalid(msg.into())
}

/// `K=V ...` words, or docker's legacy `K V...` (one key, the rest).
pub fn pairs(
    words: &[String],
    legacy_rest: Option<&str>,
) -> Result<Vec<(String, String)>, BuildError> {
    if let (Some(first), Some(rest)) = (words.first(), legacy_rest) {
        if !first.contains('=') {
            if rest.is_empty() {
                return Err(invalid(format!("{first} has no value (use KEY=VALUE)")));
            }
            return Ok(vec![(first.clone(), rest.to_string())]);
        }
    }
    words
        .iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(invalid(format!("{w:?} is not KEY=VALUE"))),
        })
        .collect()
}

/// ENV: set variables, replacing earlier values in place.
pub fn env(state: &mut State, pairs: &[(String, String)]) {
    let mut env = state.list("Env");
    for (k, v) in pairs {
        let entry = format!("{k}={v}");
        match env
            .iter_mut()
            .find(|e| e.split('=').next() == Some(k.as_str()))
        {
            Some(e) => *e = entry,
            None => env.push(entry),
        }
    }
    state.cfg().insert("Env".into(), json!(env));
}

/// LABEL.
pub fn label(state: &mut State, pairs: &[(String, String)]) {
    let cfg = state.cfg();
    let labels = cfg.entry("Labels").or_insert_with(|| json!({}));
    if !labels.is_object() {
        *labels = json!({});
    }
    for (k, v) in pairs {
        labels[k.as_str()] = json!(v);
    }
}

/// WORKDIR (relative to the previous one).
pub fn workdir(state: &mut State, dir: &str) -> Result<(), BuildError> {
    if dir.is_empty() {
        return Err(invalid("WORKDIR needs a path"));
    }
    let base = state.string("WorkingDir").unwrap_or_else(|| "/".into());
    let joined = if dir.starts_with('/') {
        dir.to_string()
    } else {
        format!("{base}/{dir}")
    };
    state
        .cfg()
        .insert("WorkingDir".into(), json!(format!("/{}", clean(&joined))));
    Ok(())
}

/// A key-set field (`ExposedPorts`, `Volumes`).
fn add_keys(state: &mut State, field: &str, keys: &[String]) {
    let cfg = state.cfg();
    let m = cfg.entry(field).or_insert_with(|| json!({}));
    if !m.is_object() {
        *m = json!({});
    }
    for k in keys {
        m[k.as_str()] = json!({});
    }
}

/// EXPOSE `80`, `80/tcp`, `53/udp`, `8000-8002`.
pub fn expose(state: &mut State, words: &[String]) -> Result<(), BuildError> {
    let mut keys = Vec::new();
    for w in words {
        let (range, proto) = w.split_once('/').unwrap_or((w, "tcp"));
        let proto = proto.to_ascii_lowercase();
        if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
            return Err(invalid(format!(
                "EXPOSE {w}: protocol must be tcp, udp or sctp"
            )));
        }
        let port = |s: &str| {
            s.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| invalid(format!("EXPOSE {w}: {s:?} is not a port 1-65535")))
        };
        let (lo, hi) = match range.split_once('-') {
            Some((a, b)) => (port(a)?, port(b)?),
            None => (port(range)?, port(range)?),
        };
        if lo > hi || hi - lo > 1024 {
            return Err(invalid(format!("EXPOSE {w}: bad port range")));
        }
        keys.extend((lo..=hi).map(|p| format!("{p}/{proto}")));
    }
    add_keys(state, "ExposedPorts", &keys);
    Ok(())
}

/// VOLUME.
pub fn volume(state: &mut State, paths: &[String]) -> Result<(), BuildError> {
    if paths.iter().any(String::is_empty) {
        return Err(invalid("VOLUME with an empty path"));
    }
    add_keys(state, "Volumes", paths);
    Ok(())
}

/// CMD or ENTRYPOINT, as run (shell form already wrapped in the SHELL).
/// ENTRYPOINT drops a CMD inherited from the base image (docker's rule),
/// `cmd_set_here` tells whether this stage set CMD itself.
pub fn command(state: &mut State, field: &str, argv: Vec<String>, cmd_set_here: bool) {
    let cfg = state.cfg();
    cfg.insert(field.into(), json!(argv));
    if field == "Entrypoint" && !cmd_set_here {
        cfg.insert("Cmd".into(), Value::Null);
    }
}

/// The SHELL in effect (docker's default `/bin/sh -c`).
pub fn shell(state: &State) -> Vec<String> {
    let s = state.list("Shell");
    if s.is_empty() {
        vec!["/bin/sh".into(), "-c".into()]
    } else {
        s
    }
}

/// A string field (`User`, `StopSignal`).
pub fn set_string(state: &mut State, field: &str, value: &str) -> Result<(), BuildError> {
    if value.is_empty() {
        return Err(invalid(format!("{field} needs a value")));
    }
    state.cfg().insert(field.into(), json!(value));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn each_op_sets_docker_fields() {
        let mut st = State::scratch();
        env(&mut st, &pairs(&s(&["A=1", "B=2"]), None).unwrap());
        env(&mut st, &pairs(&s(&["A"]), Some("x y")).unwrap());
        assert_eq!(st.list("Env"), ["A=x y", "B=2"]);
        workdir(&mut st, "/srv").unwrap();
        workdir(&mut st, "app/../app2").unwrap();
        assert_eq!(st.string("WorkingDir").as_deref(), Some("/srv/app2"));
        expose(&mut st, &s(&["80", "53/udp", "8000-8001"])).unwrap();
        let ports = st.config["config"]["ExposedPorts"].as_object().unwrap();
        assert_eq!(ports.len(), 4);
        assert!(expose(&mut st, &s(&["80/icmp"])).is_err());
        assert!(expose(&mut st, &s(&["1-65535"])).is_err());
        command(&mut st, "Cmd", s(&["sh"]), true);
        command(&mut st, "Entrypoint", s(&["tini"]), true);
        assert_eq!(st.list("Cmd"), ["sh"]);
        command(&mut st, "Entrypoint", s(&["tini"]), false);
        assert!(st.list("Cmd").is_empty());
        label(&mut st, &pairs(&s(&["a=b"]), None).unwrap());
        assert_eq!(st.config["config"]["Labels"]["a"], "b");
        assert!(pairs(&s(&["=x"]), None).is_err());
        assert!(pairs(&s(&["K"]), Some("")).is_err());
        assert_eq!(shell(&st), ["/bin/sh", "-c"]);
    }
}
