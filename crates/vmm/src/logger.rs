//! The VMM log: one line per event, `SECONDS.MILLIS LEVEL message`,
//! appended to a file (`--log`, a config file's `logger`, or `PUT /logger`).
//! A log that cannot be written never stops the VM.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::file::LogLevel;

/// Errors opening the log.
#[derive(Debug, thiserror::Error)]
#[error("Cannot open the log file {}", path.display())]
pub struct LogError {
    /// The file.
    pub path: PathBuf,
    /// The cause.
    #[source]
    pub source: std::io::Error,
}

/// The log.
#[derive(Debug)]
pub struct Log {
    file: Option<File>,
    path: Option<PathBuf>,
    level: LogLevel,
}

impl Default for Log {
    fn default() -> Self {
        Log {
            file: None,
            path: None,
            level: LogLevel::Info,
        }
    }
}

impl Log {
    /// Opens (creating, appending to) `path`, or logs nowhere without one.
    pub fn open(path: Option<&Path>, level: LogLevel) -> Result<Self, LogError> {
        let file = path
            .map(|p| {
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .map_err(|source| LogError {
                        path: p.to_owned(),
                        source,
                    })
            })
            .transpose()?;
        Ok(Log {
            file,
            path: path.map(Path::to_path_buf),
            level,
        })
    }

    /// The file, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The level.
    pub fn level(&self) -> LogLevel {
        self.level
    }

    /// An `INFO` line.
    pub fn info(&mut self, msg: &str) {
        self.write(LogLevel::Info, "INFO", msg);
    }

    /// A `WARN` line.
    pub fn warn(&mut self, msg: &str) {
        self.write(LogLevel::Warning, "WARN", msg);
    }

    /// An `ERROR` line.
    pub fn error(&mut self, msg: &str) {
        self.write(LogLevel::Error, "ERROR", msg);
    }

    fn write(&mut self, level: LogLevel, name: &str, msg: &str) {
        if level > self.level {
            return;
        }
        if let Some(f) = &mut self.file {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            // One write per line, so that lines from a log shared with
            // another writer do not interleave.
            let line = format!(
                "{}.{:03} {name} {msg}\n",
                now.as_secs(),
                now.subsec_millis()
            );
            let _ = f.write_all(line.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_filtered_by_level_and_appended() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("vmm.log");
        let mut log = Log::open(Some(&path), LogLevel::Warning).expect("open");
        log.info("hidden");
        log.warn("careful");
        log.error("broken");
        drop(log);
        let mut log = Log::open(Some(&path), LogLevel::Info).expect("reopen");
        log.info("again");
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(!text.contains("hidden"));
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].ends_with(" WARN careful"));
        assert!(lines[1].ends_with(" ERROR broken"));
        assert!(lines[2].ends_with(" INFO again"));
        let err = Log::open(Some(&dir.path().join("no/dir/log")), LogLevel::Info)
            .expect_err("missing dir");
        assert!(err.to_string().contains("no/dir/log"));
    }
}
