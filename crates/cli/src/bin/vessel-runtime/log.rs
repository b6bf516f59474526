//! Error reporting: the whole error chain on stderr, and in `--log` as runc
//! writes it (logrus text or JSON lines), which is where containerd looks.

use std::io::Write;
use std::path::Path;

use crate::args::LogFormat;

/// Report a failure of the command.
pub fn error(log: Option<&Path>, format: LogFormat, err: &anyhow::Error) {
    let msg = err
        .chain()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join(": ");
    let _ = writeln!(std::io::stderr(), "vessel-runtime: error: {msg}");
    if let Some(path) = log {
        write_line(path, format, "error", &msg);
    }
}

fn write_line(path: &Path, format: LogFormat, level: &str, msg: &str) {
    let time = vessel_runtime::state::now_rfc3339();
    let line = match format {
        LogFormat::Json => {
            serde_json::json!({"level": level, "msg": msg, "time": time}).to_string()
        }
        LogFormat::Text => format!("time={time:?} level={level} msg={msg:?}"),
    };
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = writeln!(f, "{line}");
    }
}
