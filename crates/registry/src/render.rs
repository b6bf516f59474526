//! The terminal renderer for [`Progress`]: on a terminal, one live line per
//! blob (bytes, bar, rate, ETA), redrawn in place at most ten times a
//! second; elsewhere (logs, CI) one plain line per finished blob.
//! `-q` uses [`crate::Silent`] instead.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use vessel_image::Digest;

use crate::progress::{Direction, Outcome, Progress};

/// How to draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Live lines redrawn with ANSI cursor movement.
    Tty,
    /// One line per finished blob, for logs.
    Plain,
}

struct Row {
    digest: Digest,
    size: u64,
    done: u64,
    direction: Direction,
    started: Instant,
    outcome: Option<Outcome>,
}

struct State {
    out: Box<dyn Write + Send>,
    rows: Vec<Row>,
    drawn: usize,
    last_draw: Option<Instant>,
}

/// Progress drawn on a terminal or as plain lines.
pub struct Bars {
    mode: Mode,
    state: Mutex<State>,
}

impl std::fmt::Debug for Bars {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bars").field("mode", &self.mode).finish()
    }
}

/// Redraw at most this often on a terminal.
const REDRAW: Duration = Duration::from_millis(100);

impl Bars {
    /// Draw into `out` in `mode`.
    pub fn new(mode: Mode, out: Box<dyn Write + Send>) -> Self {
        Bars {
            mode,
            state: Mutex::new(State {
                out,
                rows: Vec::new(),
                drawn: 0,
                last_draw: None,
            }),
        }
    }

    /// On stderr: live bars when it is a terminal, plain lines otherwise
    /// (stdout stays free for the digest a script reads).
    pub fn stderr() -> Self {
        let mode = if std::io::stderr().is_terminal() {
            Mode::Tty
        } else {
            Mode::Plain
        };
        Bars::new(mode, Box::new(std::io::stderr()))
    }

    fn with(&self, f: impl FnOnce(&mut State)) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut s);
    }
}

impl State {
    fn row(&mut self, digest: &Digest) -> Option<&mut Row> {
        self.rows.iter_mut().rev().find(|r| &r.digest == digest)
    }

    /// Rewrite the live lines in place (output errors are ignored: progress
    /// must never fail a transfer).
    fn redraw(&mut self) {
        let mut text = String::new();
        if self.drawn > 0 {
            text.push_str(&format!("\x1b[{}A", self.drawn));
        }
        for r in &self.rows {
            text.push_str("\r\x1b[2K");
            text.push_str(&tty_line(r, Instant::now()));
            text.push('\n');
        }
        self.drawn = self.rows.len();
        self.last_draw = Some(Instant::now());
        let _ = self.out.write_all(text.as_bytes());
        let _ = self.out.flush();
    }
}

impl Progress for Bars {
    fn begin(&self, digest: &Digest, size: u64, direction: Direction) {
        self.with(|s| {
            s.rows.push(Row {
                digest: digest.clone(),
                size,
                done: 0,
                direction,
                started: Instant::now(),
                outcome: None,
            });
            if self.mode == Mode::Tty {
                s.redraw();
            }
        });
    }

    fn advance(&self, digest: &Digest, done: u64) {
        self.with(|s| {
            if let Some(r) = s.row(digest) {
                r.done = done;
            }
            let due = s.last_draw.is_none_or(|t| t.elapsed() >= REDRAW);
            if self.mode == Mode::Tty && due {
                s.redraw();
            }
        });
    }

    fn end(&self, digest: &Digest, outcome: Outcome) {
        self.with(|s| {
            let Some(r) = s.row(digest) else { return };
            if outcome == Outcome::Done {
                r.done = r.size;
            }
            r.outcome = Some(outcome);
            match self.mode {
                Mode::Tty => s.redraw(),
                Mode::Plain => {
                    let line = plain_line(r, Instant::now());
                    let _ = writeln!(s.out, "{line}");
                    let _ = s.out.flush();
                }
            }
        });
    }

    fn note(&self, message: &str) {
        let message: String = message.chars().filter(|c| !c.is_control()).collect();
        self.with(|s| {
            if self.mode == Mode::Tty && s.drawn > 0 {
                // Print above the live lines: go up, write, draw them again.
                let _ = write!(s.out, "\x1b[{}A\r\x1b[2K{message}\n", s.drawn);
                s.drawn -= 1;
                s.redraw();
            } else {
                let _ = writeln!(s.out, "{message}");
                let _ = s.out.flush();
            }
        });
    }
}

fn verb(r: &Row) -> String {
    match (&r.outcome, r.direction) {
        (None, Direction::Download) => "Downloading".into(),
        (None, Direction::Upload) => "Uploading".into(),
        (Some(Outcome::Done), Direction::Download) => "Pull complete".into(),
        (Some(Outcome::Done), Direction::Upload) => "Pushed".into(),
        (Some(Outcome::Exists), _) => "Already exists".into(),
        (Some(Outcome::Mounted(from)), _) => format!("Mounted from {from}"),
        (Some(Outcome::Failed), _) => "Failed".into(),
    }
}

/// A live line: `0123456789ab: Downloading [=====>    ] 1.2/4.0 MiB 3.1 MiB/s ETA 1s`.
fn tty_line(r: &Row, now: Instant) -> String {
    let head = format!("{}: {}", r.digest.short(), verb(r));
    if r.outcome.is_some() {
        return format!("{head} {}", human_bytes(r.size));
    }
    let secs = now.duration_since(r.started).as_secs_f64();
    let rate = if secs > 0.0 {
        r.done as f64 / secs
    } else {
        0.0
    };
    let eta = if rate > 0.0 && r.size >= r.done {
        format!(" ETA {}", human_duration((r.size - r.done) as f64 / rate))
    } else {
        String::new()
    };
    format!(
        "{head} {} {}/{} {}/s{eta}",
        bar(r.done, r.size, 20),
        human_bytes(r.done),
        human_bytes(r.size),
        human_bytes(rate as u64),
    )
}

/// A log line for a finished blob: `Copying blob 0123456789ab: done (4.0 MiB)`.
fn plain_line(r: &Row, now: Instant) -> String {
    let what = match (&r.outcome, r.direction) {
        (Some(Outcome::Done), _) => {
            let secs = now.duration_since(r.started).as_secs_f64();
            format!("done ({} in {:.1}s)", human_bytes(r.size), secs)
        }
        (Some(Outcome::Exists), Direction::Download) => "already in the store".into(),
        (Some(Outcome::Exists), Direction::Upload) => "already in the registry".into(),
        (Some(Outcome::Mounted(from)), _) => format!("mounted from {from}"),
        (Some(Outcome::Failed), _) | (None, _) => "failed".into(),
    };
    format!("Copying blob {}: {what}", r.digest.short())
}

/// `[=====>    ]` of `width` cells.
pub fn bar(done: u64, total: u64, width: usize) -> String {
    let filled = if total == 0 {
        width
    } else {
        ((done.min(total) as u128 * width as u128) / total as u128) as usize
    };
    let mut s = String::with_capacity(width + 2);
    s.push('[');
    for i in 0..width {
        s.push(if i < filled {
            '='
        } else if i == filled {
            '>'
        } else {
            ' '
        });
    }
    s.push(']');
    s
}

/// `512 B`, `1.5 KiB`, `12.3 MiB`, `2.0 GiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", UNITS[u])
}

/// `42s`, `3m05s`, `2h07m`.
pub fn human_duration(secs: f64) -> String {
    let s = if secs.is_finite() && secs > 0.0 {
        secs.round() as u64
    } else {
        0
    };
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl Buf {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    #[test]
    fn formats() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(5 << 20), "5.0 MiB");
        assert_eq!(human_duration(42.4), "42s");
        assert_eq!(human_duration(185.0), "3m05s");
        assert_eq!(human_duration(7620.0), "2h07m");
        assert_eq!(human_duration(f64::INFINITY), "0s");
        assert_eq!(bar(0, 10, 4), "[>   ]");
        assert_eq!(bar(5, 10, 4), "[==> ]");
        assert_eq!(bar(10, 10, 4), "[====]");
        assert_eq!(bar(0, 0, 4), "[====]");
    }

    #[test]
    fn plain_lines_for_logs() {
        let buf = Buf::default();
        let bars = Bars::new(Mode::Plain, Box::new(buf.clone()));
        let (a, b, c) = (Digest::of(b"a"), Digest::of(b"b"), Digest::of(b"c"));
        bars.note("Pulling x");
        bars.begin(&a, 2048, Direction::Download);
        bars.advance(&a, 1024);
        bars.begin(&b, 10, Direction::Download);
        bars.end(&b, Outcome::Exists);
        bars.end(&a, Outcome::Done);
        bars.begin(&c, 10, Direction::Upload);
        bars.end(&c, Outcome::Mounted("team/app".into()));
        let text = buf.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert_eq!(lines[0], "Pulling x");
        assert_eq!(
            lines[1],
            format!("Copying blob {}: already in the store", b.short())
        );
        assert!(lines[2].starts_with(&format!("Copying blob {}: done (2.0 KiB in ", a.short())));
        assert_eq!(
            lines[3],
            format!("Copying blob {}: mounted from team/app", c.short())
        );
        assert!(!text.contains('\x1b'));
    }

    #[test]
    fn tty_lines_redraw_in_place() {
        let buf = Buf::default();
        let bars = Bars::new(Mode::Tty, Box::new(buf.clone()));
        let (a, b) = (Digest::of(b"a"), Digest::of(b"b"));
        bars.begin(&a, 4 << 20, Direction::Download);
        bars.begin(&b, 1 << 20, Direction::Upload);
        bars.end(&b, Outcome::Done);
        let text = buf.text();
        // Each redraw after the first moves back up over the lines drawn.
        assert!(text.contains("\x1b[1A"), "{text:?}");
        assert!(text.contains("\x1b[2A"), "{text:?}");
        let last = text.rsplit("\x1b[2A").next().unwrap();
        assert!(
            last.contains(&format!("{}: Downloading [>", a.short())),
            "{last:?}"
        );
        assert!(last.contains("0 B/4.0 MiB"), "{last:?}");
        assert!(
            last.contains(&format!("{}: Pushed 1.0 MiB", b.short())),
            "{last:?}"
        );
    }
}
