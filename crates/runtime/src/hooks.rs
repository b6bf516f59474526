//! OCI hooks: programs run at points of the lifecycle with the container's
//! state on their stdin.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::{Hook, Hooks};
use serde::Serialize;

use crate::error::{Result, RuntimeError};

/// The six hook points of the runtime spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookKind {
    /// Deprecated; run with createRuntime.
    Prestart,
    /// In the runtime namespace, after the environment was created, before pivot_root.
    CreateRuntime,
    /// In the container's namespaces, before pivot_root.
    CreateContainer,
    /// In the container, after `start`, before the program runs.
    StartContainer,
    /// In the runtime namespace, after the program started.
    Poststart,
    /// In the runtime namespace, after the container was deleted.
    Poststop,
}

impl HookKind {
    /// The config.json name.
    pub fn name(self) -> &'static str {
        match self {
            HookKind::Prestart => "prestart",
            HookKind::CreateRuntime => "createRuntime",
            HookKind::CreateContainer => "createContainer",
            HookKind::StartContainer => "startContainer",
            HookKind::Poststart => "poststart",
            HookKind::Poststop => "poststop",
        }
    }

    /// The hooks of this kind in config.json.
    pub fn select(self, hooks: &Hooks) -> &[Hook] {
        let v = match self {
            HookKind::Prestart => hooks.prestart(),
            HookKind::CreateRuntime => hooks.create_runtime(),
            HookKind::CreateContainer => hooks.create_container(),
            HookKind::StartContainer => hooks.start_container(),
            HookKind::Poststart => hooks.poststart(),
            HookKind::Poststop => hooks.poststop(),
        };
        v.as_deref().unwrap_or(&[])
    }
}

/// The state document hooks read on stdin (runtime-spec "State").
#[derive(Debug, Clone, Serialize)]
pub struct HookState<'a> {
    /// Spec version.
    #[serde(rename = "ociVersion")]
    pub oci_version: &'a str,
    /// Container id.
    pub id: &'a str,
    /// creating, created, running, stopped.
    pub status: &'a str,
    /// Init pid, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    /// Bundle path.
    pub bundle: &'a str,
    /// Annotations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<&'a std::collections::HashMap<String, String>>,
}

/// Run every hook of `kind`, in order; the first failure stops the sequence.
pub fn run_all(kind: HookKind, hooks: Option<&Hooks>, state: &HookState<'_>) -> Result<()> {
    let Some(hooks) = hooks else { return Ok(()) };
    let list = kind.select(hooks);
    if list.is_empty() {
        return Ok(());
    }
    let json = serde_json::to_vec(state).expect("state serializes");
    for hook in list {
        run_one(kind, hook, &json)?;
    }
    Ok(())
}

fn run_one(kind: HookKind, hook: &Hook, state: &[u8]) -> Result<()> {
    let fail = |reason: String, source: Option<std::io::Error>| RuntimeError::Hook {
        kind: kind.name(),
        path: hook.path().clone(),
        reason,
        source,
    };
    let mut cmd = Command::new(hook.path());
    if let Some(args) = hook.args() {
        if let Some((first, rest)) = args.split_first() {
            use std::os::unix::process::CommandExt;
            cmd.arg0(first).args(rest);
        }
    }
    cmd.env_clear();
    for e in hook.env().iter().flatten() {
        if let Some((k, v)) = e.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| fail("cannot start".into(), Some(e)))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is allowed: ignore EPIPE.
        let _ = stdin.write_all(state);
    }
    let timeout = hook
        .timeout()
        .filter(|t| *t > 0)
        .map(|t| Duration::from_secs(t as u64));
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) => {}
            Err(e) => return Err(fail("cannot wait".into(), Some(e))),
        }
        if let Some(t) = timeout {
            if started.elapsed() >= t {
                let _ = child.kill();
                let _ = child.wait();
                return Err(fail(format!("timed out after {}s", t.as_secs()), None));
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    if !status.success() {
        let mut stderr = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut stderr);
        }
        let stderr = stderr.trim();
        let detail = if stderr.is_empty() {
            String::new()
        } else {
            format!(": {stderr}")
        };
        return Err(fail(format!("{status}{detail}"), None));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hooks(json: serde_json::Value) -> Hooks {
        serde_json::from_value(json).unwrap()
    }

    fn state() -> HookState<'static> {
        HookState {
            oci_version: "1.0.2",
            id: "c1",
            status: "creating",
            pid: Some(1),
            bundle: "/b",
            annotations: None,
        }
    }

    #[test]
    fn hook_reads_state_on_stdin() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let h = hooks(serde_json::json!({"createRuntime": [
            {"path": "/bin/sh", "args": ["sh", "-c", format!("cat > {}", out.display())]}
        ]}));
        run_all(HookKind::CreateRuntime, Some(&h), &state()).unwrap();
        let got: serde_json::Value = serde_json::from_slice(&std::fs::read(out).unwrap()).unwrap();
        assert_eq!(got["id"], "c1");
        assert_eq!(got["status"], "creating");
    }

    #[test]
    fn failing_hook_names_itself_and_stderr() {
        let h = hooks(serde_json::json!({"poststart": [
            {"path": "/bin/sh", "args": ["sh", "-c", "echo broken >&2; exit 3"]}
        ]}));
        let err = run_all(HookKind::Poststart, Some(&h), &state())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("poststart") && err.contains("/bin/sh") && err.contains("broken"),
            "{err}"
        );
    }

    #[test]
    fn hook_timeout_kills_it() {
        let h = hooks(serde_json::json!({"prestart": [
            {"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}
        ]}));
        let err = run_all(HookKind::Prestart, Some(&h), &state())
            .unwrap_err()
            .to_string();
        assert!(err.contains("timed out after 1s"), "{err}");
    }

    #[test]
    fn missing_hook_binary_is_an_error() {
        let h = hooks(serde_json::json!({"poststop": [{"path": "/no/such/hook"}]}));
        let err = run_all(HookKind::Poststop, Some(&h), &state())
            .unwrap_err()
            .to_string();
        assert!(err.contains("/no/such/hook"), "{err}");
    }
}
