//! Container logs: `<container dir>/container.log`, docker's `json-file`
//! format — one JSON object per line of output:
//!
//! ```text
//! {"log":"hello\n","stream":"stdout","time":"2026-11-21T10:00:00.123456789Z"}
//! ```
//!
//! The monitor is the only writer ([`LogWriter`]); `vessel logs` reads
//! ([`read`]) while it writes. A line is written when its newline arrives, or
//! in pieces of [`MAX_LINE`] bytes (docker's limit), or when the stream ends;
//! a reader never sees half a JSON line because each is one `write` on an
//! `O_APPEND` file. Output that is not UTF-8 is stored lossily (docker does
//! the same).

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{EngineError, Result};

/// The log file of the container whose directory is `dir`.
pub fn path(dir: &Path) -> PathBuf {
    dir.join("container.log")
}

/// The longest piece of a line stored as one entry.
pub const MAX_LINE: usize = 16 * 1024;

/// Which output stream a log entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// Standard output (and everything from a terminal).
    Stdout,
    /// Standard error.
    Stderr,
}

/// One line of the log file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// The output, with its newline when it had one.
    pub log: String,
    /// Where it came from.
    pub stream: Stream,
    /// RFC 3339 with nanoseconds, UTC.
    pub time: String,
}

/// The monitor's side: buffers partial lines per stream.
#[derive(Debug)]
pub struct LogWriter {
    file: File,
    partial: [Vec<u8>; 2],
}

impl LogWriter {
    /// Open (appending, creating) the log file of the container in `dir`.
    pub fn open(dir: &Path) -> Result<LogWriter> {
        let p = path(dir);
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o640)
            .custom_flags(libc::O_CLOEXEC)
            .open(&p)
            .map_err(EngineError::io("cannot open", &p))?;
        Ok(LogWriter {
            file,
            partial: [Vec::new(), Vec::new()],
        })
    }

    /// The file's descriptor (kept open across the monitor's clean-up).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Add output `data` of `stream`; complete lines are written now.
    pub fn write(&mut self, stream: Stream, data: &[u8]) {
        let buf = &mut self.partial[stream as usize];
        buf.extend_from_slice(data);
        let mut start = 0;
        let mut lines = Vec::new();
        while let Some(nl) = buf[start..].iter().position(|&b| b == b'\n') {
            lines.push(start..start + nl + 1);
            start += nl + 1;
        }
        while buf.len() - start >= MAX_LINE {
            lines.push(start..start + MAX_LINE);
            start += MAX_LINE;
        }
        let pending: Vec<Vec<u8>> = lines.into_iter().map(|r| buf[r].to_vec()).collect();
        buf.drain(..start);
        for line in pending {
            self.append(stream, &line);
        }
    }

    /// Write what is left of `stream` (it ended).
    pub fn flush(&mut self, stream: Stream) {
        let rest = std::mem::take(&mut self.partial[stream as usize]);
        if !rest.is_empty() {
            self.append(stream, &rest);
        }
    }

    fn append(&mut self, stream: Stream, data: &[u8]) {
        let entry = LogEntry {
            log: String::from_utf8_lossy(data).into_owned(),
            stream,
            time: vessel_runtime::state::now_rfc3339(),
        };
        let Ok(mut line) = serde_json::to_vec(&entry) else {
            return;
        };
        line.push(b'\n');
        // A full disk loses log lines, never the container.
        let _ = self.file.write_all(&line);
    }
}

/// What `vessel logs` asks for.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadOptions {
    /// Only the last N entries.
    pub tail: Option<usize>,
}

/// A reader over the log file, resumable for `logs -f`.
#[derive(Debug)]
pub struct LogReader {
    reader: Option<BufReader<File>>,
    path: PathBuf,
    pending: String,
}

impl LogReader {
    /// Open the log of the container in `dir` (an absent file is empty).
    pub fn open(dir: &Path) -> Result<LogReader> {
        let p = path(dir);
        let reader = match File::open(&p) {
            Ok(f) => Some(BufReader::new(f)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(EngineError::io("cannot open", &p)(e)),
        };
        Ok(LogReader {
            reader,
            path: p,
            pending: String::new(),
        })
    }

    /// The entries written since the last call (the whole file at first).
    /// A line still being written is kept for the next call; a line that
    /// does not parse is skipped.
    pub fn next_entries(&mut self) -> Result<Vec<LogEntry>> {
        if self.reader.is_none() {
            match File::open(&self.path) {
                Ok(f) => self.reader = Some(BufReader::new(f)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(EngineError::io("cannot open", &self.path)(e)),
            }
        }
        let Some(reader) = self.reader.as_mut() else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        loop {
            let n = reader
                .read_line(&mut self.pending)
                .map_err(EngineError::io("cannot read", &self.path))?;
            if n == 0 || !self.pending.ends_with('\n') {
                break;
            }
            if let Ok(e) = serde_json::from_str::<LogEntry>(&self.pending) {
                out.push(e);
            }
            self.pending.clear();
        }
        Ok(out)
    }

    /// Skip to the end (for `--tail 0 -f`).
    pub fn seek_end(&mut self) -> Result<()> {
        if let Some(r) = self.reader.as_mut() {
            r.seek(SeekFrom::End(0))
                .map_err(EngineError::io("cannot read", &self.path))?;
        }
        Ok(())
    }
}

/// The entries of the container in `dir` now, as `opts` asks.
pub fn read(dir: &Path, opts: ReadOptions) -> Result<Vec<LogEntry>> {
    let mut all = LogReader::open(dir)?.next_entries()?;
    if let Some(n) = opts.tail {
        let skip = all.len().saturating_sub(n);
        all.drain(..skip);
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_partial_lines_and_streams() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = LogWriter::open(dir.path()).unwrap();
        w.write(Stream::Stdout, b"hel");
        w.write(Stream::Stderr, b"oops\n");
        w.write(Stream::Stdout, b"lo\nwor");
        w.flush(Stream::Stdout);
        let got: Vec<(String, Stream)> = read(dir.path(), ReadOptions::default())
            .unwrap()
            .into_iter()
            .map(|e| (e.log, e.stream))
            .collect();
        assert_eq!(
            got,
            [
                ("oops\n".to_owned(), Stream::Stderr),
                ("hello\n".to_owned(), Stream::Stdout),
                ("wor".to_owned(), Stream::Stdout),
            ]
        );
        let tail = read(dir.path(), ReadOptions { tail: Some(1) }).unwrap();
        assert_eq!(tail.len(), 1);
        assert_eq!(tail[0].log, "wor");
    }

    #[test]
    fn long_lines_are_split_and_binary_is_lossy() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = LogWriter::open(dir.path()).unwrap();
        w.write(Stream::Stdout, &vec![b'x'; MAX_LINE + 10]);
        w.write(Stream::Stdout, b"\xff\n");
        let e = read(dir.path(), ReadOptions::default()).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].log.len(), MAX_LINE);
        assert_eq!(e[1].log, "xxxxxxxxxx\u{fffd}\n");
    }

    #[test]
    fn reader_resumes_and_skips_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = LogReader::open(dir.path()).unwrap();
        assert!(r.next_entries().unwrap().is_empty());
        let mut w = LogWriter::open(dir.path()).unwrap();
        w.write(Stream::Stdout, b"one\n");
        assert_eq!(r.next_entries().unwrap().len(), 1);
        std::fs::OpenOptions::new()
            .append(true)
            .open(path(dir.path()))
            .unwrap()
            .write_all(b"not json\n{\"log\":")
            .unwrap();
        assert!(r.next_entries().unwrap().is_empty());
        w.write(Stream::Stdout, b"two\n");
        // The half line above swallowed the start of "two": skipped, not fatal.
        let _ = r.next_entries().unwrap();
        w.write(Stream::Stdout, b"three\n");
        let e = r.next_entries().unwrap();
        assert_eq!(e.last().unwrap().log, "three\n");
    }
}
