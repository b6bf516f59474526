//! `--change` instructions in Dockerfile syntax, applied to an image config.
//!
//! `CMD`, `ENTRYPOINT` (JSON form `["a","b"]`, or shell form run by
//! `/bin/sh -c`), `ENV` (`K=V ...` or `K V`), `WORKDIR` (relative to the
//! previous one), `USER`, `EXPOSE` (`80`, `80/tcp`, `53/udp`, `8000-8002`),
//! `LABEL` (`K=V ...`), `VOLUME` (JSON or words). `INSTRUCTION VALUE` and
//! podman's `INSTRUCTION=VALUE` both parse. Unlike a Dockerfile, a value that
//! starts with `[` but is not a JSON array of strings is an error rather
//! than a shell command: on a command line it is far more likely a typo.
//! Variables are not substituted.

use std::collections::BTreeMap;

/// Why a `--change` is refused.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// Not an instruction `import` applies.
    #[error("--change {change:?}: {instruction:?} is not supported (use CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, LABEL or VOLUME)")]
    Unsupported {
        /// The whole change.
        change: String,
        /// Its instruction.
        instruction: String,
    },
    /// The value is malformed for the instruction.
    #[error("--change {change:?}: {reason}")]
    Invalid {
        /// The whole change.
        change: String,
        /// What is wrong.
        reason: String,
    },
}

/// The config fields `--change` can set, in docker's JSON names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// `Cmd`.
    pub cmd: Option<Vec<String>>,
    /// `Entrypoint`.
    pub entrypoint: Option<Vec<String>>,
    /// `Env` (`K=V`, later keys replace earlier ones in place).
    pub env: Vec<String>,
    /// `WorkingDir`.
    pub working_dir: Option<String>,
    /// `User`.
    pub user: Option<String>,
    /// `ExposedPorts` keys (`80/tcp`).
    pub exposed_ports: Vec<String>,
    /// `Labels`.
    pub labels: BTreeMap<String, String>,
    /// `Volumes` keys.
    pub volumes: Vec<String>,
}

impl Changes {
    /// Parse and apply every change in order.
    pub fn parse(changes: &[String]) -> Result<Self, ChangeError> {
        let mut c = Changes::default();
        for ch in changes {
            c.apply(ch)?;
        }
        Ok(c)
    }

    /// Apply one change.
    pub fn apply(&mut self, change: &str) -> Result<(), ChangeError> {
        let invalid = |reason: &str| ChangeError::Invalid {
            change: change.to_string(),
            reason: reason.to_string(),
        };
        let trimmed = change.trim_start();
        let n = trimmed
            .bytes()
            .take_while(|b| b.is_ascii_alphabetic())
            .count();
        let instruction = trimmed[..n].to_ascii_uppercase();
        let rest = &trimmed[n..];
        let value = match rest.strip_prefix('=') {
            Some(v) => v.trim(),
            None if rest.is_empty() || rest.starts_with(char::is_whitespace) => rest.trim(),
            None => return Err(invalid("expected INSTRUCTION VALUE")),
        };
        let needs_value = || {
            if value.is_empty() {
                Err(invalid("missing value"))
            } else {
                Ok(())
            }
        };
        match instruction.as_str() {
            "CMD" => {
                needs_value()?;
                self.cmd = Some(command(value).map_err(|r| invalid(&r))?);
            }
            "ENTRYPOINT" => {
                needs_value()?;
                self.entrypoint = Some(command(value).map_err(|r| invalid(&r))?);
            }
            "ENV" => {
                needs_value()?;
                for (k, v) in pairs(value, true).map_err(|r| invalid(&r))? {
                    let entry = format!("{k}={v}");
                    match self
                        .env
                        .iter_mut()
                        .find(|e| e.split('=').next() == Some(k.as_str()))
                    {
                        Some(e) => *e = entry,
                        None => self.env.push(entry),
                    }
                }
            }
            "LABEL" => {
                needs_value()?;
                for (k, v) in pairs(value, false).map_err(|r| invalid(&r))? {
                    self.labels.insert(k, v);
                }
            }
            "WORKDIR" => {
                needs_value()?;
                let dir = words(value).map_err(|r| invalid(&r))?.join(" ");
                self.working_dir = Some(if dir.starts_with('/') {
                    dir
                } else {
                    let base = self.working_dir.as_deref().unwrap_or("/");
                    format!("{}/{dir}", base.trim_end_matches('/'))
                });
            }
            "USER" => {
                needs_value()?;
                let w = words(value).map_err(|r| invalid(&r))?;
                if w.len() != 1 {
                    return Err(invalid("USER takes one user[:group]"));
                }
                self.user = Some(w[0].clone());
            }
            "EXPOSE" => {
                needs_value()?;
                for w in words(value).map_err(|r| invalid(&r))? {
                    for p in ports(&w).map_err(|r| invalid(&r))? {
                        if !self.exposed_ports.contains(&p) {
                            self.exposed_ports.push(p);
                        }
                    }
                }
            }
            "VOLUME" => {
                needs_value()?;
                let list = if value.starts_with('[') {
                    json_array(value).map_err(|r| invalid(&r))?
                } else {
                    words(value).map_err(|r| invalid(&r))?
                };
                for v in list {
                    if v.is_empty() {
                        return Err(invalid("empty volume path"));
                    }
                    if !self.volumes.contains(&v) {
                        self.volumes.push(v);
                    }
                }
            }
            _ => {
                return Err(ChangeError::Unsupported {
                    change: change.to_string(),
                    instruction: if instruction.is_empty() {
                        trimmed.split_whitespace().next().unwrap_or("").to_string()
                    } else {
                        instruction
                    },
                })
            }
        }
        Ok(())
    }

    /// The `config` object of an image config with these fields.
    pub fn to_config_json(&self) -> serde_json::Value {
        let mut c = serde_json::Map::new();
        let set = |c: &mut serde_json::Map<String, serde_json::Value>, k: &str, v| {
            c.insert(k.to_string(), v);
        };
        if let Some(cmd) = &self.cmd {
            set(&mut c, "Cmd", serde_json::json!(cmd));
        }
        if let Some(e) = &self.entrypoint {
            set(&mut c, "Entrypoint", serde_json::json!(e));
        }
        if !self.env.is_empty() {
            set(&mut c, "Env", serde_json::json!(self.env));
        }
        if let Some(w) = &self.working_dir {
            set(&mut c, "WorkingDir", serde_json::json!(w));
        }
        if let Some(u) = &self.user {
            set(&mut c, "User", serde_json::json!(u));
        }
        let keys = |v: &[String]| {
            serde_json::Value::Object(
                v.iter()
                    .map(|k| (k.clone(), serde_json::json!({})))
                    .collect(),
            )
        };
        if !self.exposed_ports.is_empty() {
            set(&mut c, "ExposedPorts", keys(&self.exposed_ports));
        }
        if !self.labels.is_empty() {
            set(&mut c, "Labels", serde_json::json!(self.labels));
        }
        if !self.volumes.is_empty() {
            set(&mut c, "Volumes", keys(&self.volumes));
        }
        serde_json::Value::Object(c)
    }
}

/// JSON form, or shell form run by `/bin/sh -c`.
fn command(value: &str) -> Result<Vec<String>, String> {
    if value.starts_with('[') {
        json_array(value)
    } else {
        Ok(vec!["/bin/sh".into(), "-c".into(), value.to_string()])
    }
}

fn json_array(value: &str) -> Result<Vec<String>, String> {
    serde_json::from_str::<Vec<String>>(value)
        .map_err(|e| format!("not a JSON array of strings ({e})"))
}

/// Split on whitespace; double and single quotes group, backslash escapes.
fn words(value: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"') | None, '\\') => {
                cur.push(chars.next().ok_or("trailing backslash")?);
                in_word = true;
            }
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err("unterminated quote".into());
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// `K=V ...`; with `legacy`, also `K V W` (one key, the rest is the value).
fn pairs(value: &str, legacy: bool) -> Result<Vec<(String, String)>, String> {
    let first = value.split_whitespace().next().unwrap_or("");
    if legacy && !first.contains('=') {
        let v = value[first.len()..].trim();
        if v.is_empty() {
            return Err(format!("{first} has no value (use KEY=VALUE)"));
        }
        return Ok(vec![(first.to_string(), v.to_string())]);
    }
    words(value)?
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(format!("{w:?} is not KEY=VALUE")),
        })
        .collect()
}

/// `80`, `80/tcp`, `53/udp`, `8000-8002/tcp` -> `port/proto` keys.
fn ports(word: &str) -> Result<Vec<String>, String> {
    let (range, proto) = word.split_once('/').unwrap_or((word, "tcp"));
    let proto = proto.to_ascii_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("port {word:?}: protocol must be tcp, udp or sctp"));
    }
    let port = |s: &str| {
        s.parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("port {word:?}: {s:?} is not a port number 1-65535"))
    };
    let (lo, hi) = match range.split_once('-') {
        Some((a, b)) => (port(a)?, port(b)?),
        None => (port(range)?, port(range)?),
    };
    if lo > hi {
        return Err(format!("port range {word:?} is reversed"));
    }
    Ok((lo..=hi).map(|p| format!("{p}/{proto}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(c: &[&str]) -> Result<Changes, ChangeError> {
        Changes::parse(&c.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn each_instruction_sets_its_field() {
        let c = parse(&[
            r#"CMD ["/bin/echo", "hi there"]"#,
            "ENTRYPOINT /bin/sh -x",
            r#"ENV A=1 B="two words" C=x\ y"#,
            "ENV A 3 and more",
            "WORKDIR /srv",
            "WORKDIR app",
            "USER nobody:nogroup",
            "EXPOSE 80 53/udp 8000-8002",
            r#"LABEL org.example.v="1.0" team=core"#,
            r#"VOLUME ["/data", "/logs"]"#,
            "VOLUME /cache",
            "cmd=/bin/true",
        ])
        .unwrap();
        assert_eq!(
            c.cmd,
            Some(vec!["/bin/sh".into(), "-c".into(), "/bin/true".into()])
        );
        assert_eq!(
            c.entrypoint,
            Some(vec!["/bin/sh".into(), "-c".into(), "/bin/sh -x".into()])
        );
        assert_eq!(c.env, ["A=3 and more", "B=two words", "C=x y"]);
        assert_eq!(c.working_dir.as_deref(), Some("/srv/app"));
        assert_eq!(c.user.as_deref(), Some("nobody:nogroup"));
        assert_eq!(
            c.exposed_ports,
            ["80/tcp", "53/udp", "8000/tcp", "8001/tcp", "8002/tcp"]
        );
        assert_eq!(c.labels["org.example.v"], "1.0");
        assert_eq!(c.labels["team"], "core");
        assert_eq!(c.volumes, ["/data", "/logs", "/cache"]);
        let j = c.to_config_json();
        assert_eq!(j["ExposedPorts"]["53/udp"], serde_json::json!({}));
        assert_eq!(j["Volumes"]["/cache"], serde_json::json!({}));
        assert_eq!(j["Cmd"][2], "/bin/true");
        let json = parse(&[r#"CMD ["/bin/echo", "hi there"]"#]).unwrap();
        assert_eq!(json.cmd, Some(vec!["/bin/echo".into(), "hi there".into()]));
    }

    #[test]
    fn bad_changes_name_the_problem() {
        for (c, want) in [
            ("RUN apt-get update", "\"RUN\" is not supported"),
            ("FROM scratch", "not supported"),
            ("CMD", "missing value"),
            (r#"CMD ["unterminated"#, "not a JSON array"),
            ("CMD [1, 2]", "not a JSON array"),
            ("ENV =x", "is not KEY=VALUE"),
            ("ENV ONLYKEY", "has no value"),
            ("LABEL novalue", "is not KEY=VALUE"),
            ("EXPOSE 70000", "not a port number"),
            ("EXPOSE 80/icmp", "protocol must be"),
            ("EXPOSE 90-80", "reversed"),
            ("USER a b", "one user"),
            (r#"ENV A="open"#, "unterminated quote"),
            ("CMD:x", "expected INSTRUCTION VALUE"),
            ("", "not supported"),
        ] {
            let e = parse(&[c]).unwrap_err().to_string();
            assert!(e.contains(want), "{c:?}: {e}");
        }
    }
}
