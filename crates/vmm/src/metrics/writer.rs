//! Where flushed metrics go: a file or a named pipe, one JSON object per
//! line, appended. The VMM thread writes it, so a write must never hang:
//! the file is opened non-blocking, and a pipe nobody drains costs a
//! missed line (`logger.missed_metrics_count`), not a stuck VMM.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::store::Flushed;
use super::METRICS;

/// How long a write may wait for a full pipe to drain before the line
/// is given up: long enough for a reader that is merely slow, short
/// enough that the VMM thread's API answers are not held up.
const WRITE_PATIENCE: Duration = Duration::from_millis(100);

/// Errors of the metrics sink.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The file or pipe cannot be opened.
    #[error("Cannot open the metrics file {}", path.display())]
    Open {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A line could not be written (whole).
    #[error("Cannot write metrics to {}", path.display())]
    Write {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// An open metrics sink.
#[derive(Debug)]
pub struct MetricsWriter {
    file: File,
    path: PathBuf,
}

impl MetricsWriter {
    /// Opens `path` for appending, creating a regular file if nothing is
    /// there. Read-write, as Firecracker does: opening a FIFO write-only
    /// and non-blocking fails while no reader has it open, and a reader
    /// that comes later is the normal case.
    pub fn open(path: &Path) -> Result<Self, MetricsError> {
        let open_err = |source| MetricsError::Open {
            path: path.to_owned(),
            source,
        };
        if path.as_os_str().is_empty() {
            return Err(open_err(std::io::Error::new(
                ErrorKind::InvalidInput,
                "empty path",
            )));
        }
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .map_err(open_err)?;
        let kind = file.metadata().map_err(open_err)?.file_type();
        use std::os::unix::fs::FileTypeExt;
        if !(kind.is_file() || kind.is_fifo() || kind.is_char_device()) {
            return Err(open_err(std::io::Error::new(
                ErrorKind::InvalidInput,
                "not a regular file, named pipe or character device",
            )));
        }
        Ok(MetricsWriter {
            file,
            path: path.to_owned(),
        })
    }

    /// The path it writes to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `flushed` as one line. A line that cannot be written whole
    /// within [`WRITE_PATIENCE`] counts in `logger.missed_metrics_count`.
    pub fn write(&mut self, flushed: &Flushed) -> Result<(), MetricsError> {
        let mut line = serde_json::to_vec(flushed).unwrap_or_default();
        line.push(b'\n');
        self.write_line(&line).inspect_err(|_| {
            METRICS.logger.missed_metrics_count.inc();
        })
    }

    fn write_line(&mut self, line: &[u8]) -> Result<(), MetricsError> {
        let write_err = |source| MetricsError::Write {
            path: self.path.clone(),
            source,
        };
        let deadline = Instant::now() + WRITE_PATIENCE;
        let mut rest = line;
        while !rest.is_empty() {
            match self.file.write(rest) {
                Ok(0) => return Err(write_err(ErrorKind::WriteZero.into())),
                Ok(n) => rest = &rest[n..],
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(write_err(e));
                    }
                    let timeout = PollTimeout::try_from(left).unwrap_or(PollTimeout::ZERO);
                    let mut fds = [PollFd::new(self.file.as_fd(), PollFlags::POLLOUT)];
                    // A failed or timed-out poll ends in the next write's
                    // WouldBlock and the deadline check above.
                    let _ = poll(&mut fds, timeout);
                }
                Err(e) => return Err(write_err(e)),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::store::Flushed;

    fn line(n: u64) -> Flushed {
        Flushed {
            utc_timestamp_ms: n,
            groups: vec![("vcpu", vec![("exit_io_out", n)])],
        }
    }

    #[test]
    fn lines_are_appended_to_what_the_file_has() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("metrics.json");
        std::fs::write(&path, "earlier\n").expect("write");
        let mut w = MetricsWriter::open(&path).expect("open");
        w.write(&line(1)).expect("write");
        w.write(&line(2)).expect("write");
        let text = std::fs::read_to_string(&path).expect("read");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "earlier");
        assert_eq!(
            lines[1],
            r#"{"utc_timestamp_ms":1,"vcpu":{"exit_io_out":1}}"#
        );
        assert_eq!(
            lines[2],
            r#"{"utc_timestamp_ms":2,"vcpu":{"exit_io_out":2}}"#
        );
        assert_eq!(lines.len(), 3);
    }

    #[test]
    fn a_file_that_cannot_be_opened_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (path, why) in [
            (dir.path().join("no/such/dir/metrics"), "No such file"),
            (dir.path().to_path_buf(), "directory"),
            (PathBuf::new(), "empty path"),
        ] {
            let err = MetricsWriter::open(&path).expect_err("refused");
            let text = format!("{err}: {}", std::error::Error::source(&err).expect("cause"));
            assert!(
                text.contains(&format!("metrics file {}", path.display())),
                "{text}"
            );
            assert!(text.contains(why), "{text}");
        }
    }

    #[test]
    fn a_fifo_without_a_reader_opens_and_a_full_one_costs_a_line_not_a_hang() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("metrics.fifo");
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600))
            .expect("mkfifo");
        let mut w = MetricsWriter::open(&path).expect("open with no reader");
        // Fill the pipe (64 KiB by default) with nobody reading it: the
        // writes end in errors, within the patience, and are counted.
        let before = METRICS.logger.missed_metrics_count.count();
        let big = Flushed {
            utc_timestamp_ms: 0,
            groups: vec![("x", (0..2000).map(|_| ("field_name", u64::MAX)).collect())],
        };
        let mut failed = false;
        for _ in 0..100 {
            if w.write(&big).is_err() {
                failed = true;
                break;
            }
        }
        assert!(failed, "a full pipe with no reader must refuse a line");
        assert!(METRICS.logger.missed_metrics_count.count() > before);
    }
}
