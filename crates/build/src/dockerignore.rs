//! `.dockerignore`: which files of the build context COPY and ADD cannot see.
//!
//! One pattern per line; `#` lines and blank lines are ignored; patterns
//! are cleaned like paths (`/a/./b/` is `a/b`); `*`, `?`, `[...]` stay
//! within a directory, `**` spans any number of them; a leading `!` makes
//! an exception. As in docker, the *last* pattern that matches a path
//! decides, and a pattern that matches a directory also covers everything
//! below it.

use crate::pattern::{Pattern, PatternError};

/// A `.dockerignore` line that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(".dockerignore line {line}")]
pub struct IgnoreError {
    /// 1-based.
    pub line: usize,
    /// Why.
    #[source]
    pub source: PatternError,
}

/// The parsed file.
#[derive(Debug, Clone, Default)]
pub struct Ignore {
    rules: Vec<(Pattern, bool)>,
}

impl Ignore {
    /// Parse the file's text.
    pub fn parse(text: &str) -> Result<Ignore, IgnoreError> {
        let mut rules = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let t = line.trim();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            let (negated, pat) = match t.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, t),
            };
            let cleaned = clean(pat);
            if cleaned.is_empty() {
                continue;
            }
            let p = Pattern::new(&cleaned, true).map_err(|source| IgnoreError {
                line: n + 1,
                source,
            })?;
            rules.push((p, negated));
        }
        Ok(Ignore { rules })
    }

    /// Whether `rel` (a context-relative path, `/`-separated, no leading
    /// `/`) is excluded.
    pub fn excluded(&self, rel: &str) -> bool {
        let mut excluded = false;
        for (p, negated) in &self.rules {
            if matches_or_parent(p, rel) {
                excluded = !negated;
            }
        }
        excluded
    }

    /// Whether some pattern is an exception (`!`): then an excluded
    /// directory may still hold included files.
    pub fn has_exceptions(&self) -> bool {
        self.rules.iter().any(|(_, negated)| *negated)
    }

    /// Whether there are no patterns at all.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

fn matches_or_parent(p: &Pattern, rel: &str) -> bool {
    if p.matches(rel) {
        return true;
    }
    let mut end = rel.len();
    while let Some(i) = rel[..end].rfind('/') {
        if p.matches(&rel[..i]) {
            return true;
        }
        end = i;
    }
    false
}

/// Lexical clean of a `/`-separated path: no empty or `.` segments, `..`
/// removes the previous segment (and cannot climb above the root), no
/// leading or trailing `/`.
pub fn clean(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    out.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_match_wins_and_dirs_cover_children() {
        let ig = Ignore::parse(
            "# comment\n\n*.log\n!keep.log\nsecret/\n/build/./out\n**/*.tmp\ndocs\n!docs/README.md\n",
        )
        .unwrap();
        assert!(ig.excluded("a.log"));
        assert!(!ig.excluded("keep.log"));
        assert!(!ig.excluded("dir/a.log"), "* does not cross directories");
        assert!(ig.excluded("secret") && ig.excluded("secret/key.pem"));
        assert!(ig.excluded("build/out/bin"));
        assert!(ig.excluded("x/y/z.tmp") && ig.excluded("z.tmp"));
        assert!(ig.excluded("docs/guide.md"));
        assert!(!ig.excluded("docs/README.md"));
        assert!(!ig.excluded("src/main.rs"));
    }

    #[test]
    fn bad_lines_are_named() {
        let e = Ignore::parse("ok\n[broken\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(Ignore::parse("").unwrap().is_empty());
        assert!(Ignore::parse("/\n.\n").unwrap().is_empty());
    }

    #[test]
    fn clean_never_climbs_out() {
        assert_eq!(clean("/a/./b//c/"), "a/b/c");
        assert_eq!(clean("../../x"), "x");
        assert_eq!(clean("a/../../b"), "b");
    }
}
