//! Path patterns: Go's `filepath.Match` (COPY/ADD sources) and, with
//! `**` spanning directories, `.dockerignore`'s.
//!
//! A pattern and a path are matched segment by segment (`/`-separated):
//! `*` is any run of characters within a segment, `?` one character,
//! `[a-z]`/`[^a-z]`/`[!a-z]` a class, `\` escapes the next character. With
//! `double_star`, a segment that is exactly `**` matches any number of
//! segments (zero included). Matching is linear in the input per segment
//! (no exponential backtracking on hostile patterns).

/// A pattern that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad pattern {0:?}: unterminated [ class or trailing escape")]
pub struct PatternError(pub String);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Lit(char),
    One,
    Star,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

/// A compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    /// `None` for a `**` segment.
    segments: Vec<Option<Vec<Tok>>>,
}

impl Pattern {
    /// Compile `pattern` (already cleaned: no leading `/`).
    pub fn new(pattern: &str, double_star: bool) -> Result<Pattern, PatternError> {
        let bad = || PatternError(pattern.chars().take(80).collect());
        let mut segments = Vec::new();
        for seg in pattern.split('/') {
            if double_star && seg == "**" {
                segments.push(None);
                continue;
            }
            segments.push(Some(tokens(seg).ok_or_else(bad)?));
        }
        Ok(Pattern { segments })
    }

    /// Whether `path` (relative, `/`-separated) matches.
    pub fn matches(&self, path: &str) -> bool {
        let segs: Vec<&str> = path.split('/').collect();
        let (p, s) = (self.segments.len(), segs.len());
        // dp[i][j]: pattern segments i.. match path segments j..
        let mut dp = vec![vec![false; s + 1]; p + 1];
        dp[p][s] = true;
        for i in (0..p).rev() {
            for j in (0..=s).rev() {
                dp[i][j] = match &self.segments[i] {
                    None => dp[i + 1][j] || (j < s && dp[i][j + 1]),
                    Some(toks) => j < s && dp[i + 1][j + 1] && segment_matches(toks, segs[j]),
                };
            }
        }
        dp[0][0]
    }

    /// Whether the pattern has wildcards at all (else it names one path).
    pub fn is_literal(&self) -> bool {
        self.segments.iter().all(|s| {
            s.as_ref()
                .is_some_and(|t| t.iter().all(|t| matches!(t, Tok::Lit(_))))
        })
    }
}

fn tokens(seg: &str) -> Option<Vec<Tok>> {
    let mut out = Vec::new();
    let mut chars = seg.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(match c {
            '*' => {
                if out.last() == Some(&Tok::Star) {
                    continue;
                }
                Tok::Star
            }
            '?' => Tok::One,
            '\\' => Tok::Lit(chars.next()?),
            '[' => {
                let negated = matches!(chars.peek(), Some('^' | '!'));
                if negated {
                    chars.next();
                }
                let mut ranges = Vec::new();
                let mut first = true;
                loop {
                    let mut lo = chars.next()?;
                    if lo == ']' && !first {
                        break;
                    }
                    first = false;
                    if lo == '\\' {
                        lo = chars.next()?;
                    }
                    let mut hi = lo;
                    if chars.peek() == Some(&'-') {
                        chars.next();
                        hi = match chars.next()? {
                            '\\' => chars.next()?,
                            ']' => return None,
                            h => h,
                        };
                    }
                    ranges.push((lo, hi));
                }
                Tok::Class { negated, ranges }
            }
            c => Tok::Lit(c),
        });
    }
    Some(out)
}

fn one_matches(t: &Tok, c: char) -> bool {
    match t {
        Tok::Lit(l) => *l == c,
        Tok::One => true,
        Tok::Class { negated, ranges } => {
            ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c)) != *negated
        }
        Tok::Star => false,
    }
}

/// Wildcard matching with one remembered star (the classic linear scheme:
/// a later star supersedes an earlier one, so no deeper backtracking).
fn segment_matches(toks: &[Tok], name: &str) -> bool {
    let s: Vec<char> = name.chars().collect();
    let (mut ti, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if ti < toks.len() && toks[ti] == Tok::Star {
            star = Some((ti, si));
            ti += 1;
        } else if ti < toks.len() && one_matches(&toks[ti], s[si]) {
            ti += 1;
            si += 1;
        } else if let Some((st, ss)) = star {
            ti = st + 1;
            si = ss + 1;
            star = Some((st, ss + 1));
        } else {
            return false;
        }
    }
    toks[ti..].iter().all(|t| *t == Tok::Star)
}

/// Has a wildcard character (so it is a pattern rather than a path).
pub fn has_wildcards(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, path: &str) -> bool {
        Pattern::new(p, true).unwrap().matches(path)
    }

    #[test]
    fn go_match_semantics() {
        assert!(m("*.txt", "a.txt"));
        assert!(!m("*.txt", "dir/a.txt"), "* stays within a segment");
        assert!(m("dir/*.txt", "dir/a.txt"));
        assert!(m("a?c", "abc") && !m("a?c", "ac"));
        assert!(m("[a-c]x", "bx") && !m("[^a-c]x", "bx") && m("[!a-c]x", "dx"));
        assert!(m("\\*", "*") && !m("\\*", "a"));
        assert!(m("*a*b*c*", "xxaxxbxxcxx") && !m("*a*b*c*", "xxaxxcxxbxx"));
        assert!(m("", ""));
    }

    #[test]
    fn double_star_spans_directories() {
        assert!(m("**/*.go", "a.go") && m("**/*.go", "x/y/a.go"));
        assert!(m("a/**", "a/b/c") && m("a/**", "a"));
        assert!(m("**", "anything/at/all"));
        assert!(m("a/**/z", "a/z") && m("a/**/z", "a/b/c/z") && !m("a/**/z", "a/b/c"));
        assert!(!Pattern::new("**/*.go", false).unwrap().matches("x/y/a.go"));
    }

    #[test]
    fn bad_patterns_and_hostile_ones() {
        for p in ["[abc", "a\\", "[a-]", "[]"] {
            assert!(Pattern::new(p, true).is_err(), "{p}");
        }
        // Many stars against a long non-matching name: linear, not exponential.
        let p = Pattern::new(&"*a".repeat(200), true).unwrap();
        assert!(!p.matches(&"a".repeat(199)));
        let p = Pattern::new(&"**/".repeat(200), true).unwrap();
        assert!(p.matches(&"x/".repeat(300)));
        assert!(Pattern::new("a/b", true).unwrap().is_literal());
        assert!(!Pattern::new("a/*", true).unwrap().is_literal());
    }
}
