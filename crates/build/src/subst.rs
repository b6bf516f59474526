//! Variable substitution and word splitting, as docker's shell lexer does
//! them for the instructions it substitutes (FROM, COPY, ADD, ENV, ARG,
//! LABEL, EXPOSE, USER, WORKDIR, VOLUME, STOPSIGNAL).
//!
//! `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:+alt}`,
//! `${VAR+alt}`; single quotes are literal, double quotes keep spaces and
//! still expand; the escape character (`\`, or `` ` `` after `# escape=`)
//! makes the next character literal. A variable's value is never split into
//! words and never re-expanded. Input is untrusted (a Containerfile):
//! nesting is bounded and every error names what is unterminated.

/// Why a word cannot be processed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubstError {
    /// A quote or `${` without its end.
    #[error("unterminated {0}")]
    Unterminated(&'static str),
    /// `${...}` with something other than a name and a modifier.
    #[error("bad substitution {0:?}")]
    Bad(String),
    /// `${a:-${b:-${...}}}` nested too deep.
    #[error("substitution nested more than {MAX_DEPTH} levels")]
    TooDeep,
}

/// Deepest `${...:-${...}}` nesting accepted.
pub const MAX_DEPTH: usize = 32;

/// Looks a variable up (`None`: unset).
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Split `input` into words (unquoted whitespace separates them), removing
/// quotes and expanding variables.
pub fn words(input: &str, escape: char, env: Lookup<'_>) -> Result<Vec<String>, SubstError> {
    let mut lx = Lexer::new(input, escape, env);
    lx.run(true)
}

/// Process `input` as one word: quotes removed and variables expanded, but
/// whitespace kept.
pub fn word(input: &str, escape: char, env: Lookup<'_>) -> Result<String, SubstError> {
    let mut lx = Lexer::new(input, escape, env);
    Ok(lx.run(false)?.concat())
}

struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    escape: char,
    env: Lookup<'a>,
    depth: usize,
}

impl<'a> Lexer<'a> {
    fn new(input: &str, escape: char, env: Lookup<'a>) -> Self {
        Lexer {
            chars: input.chars().collect(),
            pos: 0,
            escape,
            env,
            depth: 0,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn run(&mut self, split: bool) -> Result<Vec<String>, SubstError> {
        let mut out = Vec::new();
        let mut cur = String::new();
        let mut in_word = false;
        while let Some(c) = self.next() {
            if split && c.is_whitespace() {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
                continue;
            }
            // A quoted empty string is a word; an empty expansion is not.
            in_word |= c == '\'' || c == '"';
            match c {
                '\'' => self.single_quoted(&mut cur)?,
                '"' => self.double_quoted(&mut cur)?,
                '$' => self.dollar(&mut cur)?,
                c if c == self.escape => match self.next() {
                    Some(n) => cur.push(n),
                    None => cur.push(c),
                },
                c => cur.push(c),
            }
            in_word |= !cur.is_empty();
        }
        if in_word || !split {
            out.push(cur);
        }
        Ok(out)
    }

    fn single_quoted(&mut self, cur: &mut String) -> Result<(), SubstError> {
        loop {
            match self.next() {
                Some('\'') => return Ok(()),
                Some(c) => cur.push(c),
                None => return Err(SubstError::Unterminated("single quote")),
            }
        }
    }

    fn double_quoted(&mut self, cur: &mut String) -> Result<(), SubstError> {
        loop {
            match self.next() {
                Some('"') => return Ok(()),
                Some('$') => self.dollar(cur)?,
                Some(c) if c == self.escape => match self.peek() {
                    Some(n) if n == '"' || n == '$' || n == self.escape => {
                        self.pos += 1;
                        cur.push(n);
                    }
                    _ => cur.push(c),
                },
                Some(c) => cur.push(c),
                None => return Err(SubstError::Unterminated("double quote")),
            }
        }
    }

    fn name(&mut self) -> String {
        let mut n = String::new();
        while let Some(c) = self.peek() {
            let ok = c == '_' || c.is_ascii_alphanumeric();
            if !ok || (n.is_empty() && c.is_ascii_digit()) {
                break;
            }
            n.push(c);
            self.pos += 1;
        }
        n
    }

    /// After a `$`.
    fn dollar(&mut self, cur: &mut String) -> Result<(), SubstError> {
        if self.peek() == Some('{') {
            self.pos += 1;
            return self.braced(cur);
        }
        let n = self.name();
        if n.is_empty() {
            cur.push('$');
        } else {
            cur.push_str(&(self.env)(&n).unwrap_or_default());
        }
        Ok(())
    }

    /// After `${`.
    fn braced(&mut self, cur: &mut String) -> Result<(), SubstError> {
        let start = self.pos;
        let n = self.name();
        if n.is_empty() {
            return Err(self.bad(start));
        }
        let value = (self.env)(&n);
        let (colon, op) = match (self.next(), self.peek()) {
            (Some('}'), _) => {
                cur.push_str(&value.unwrap_or_default());
                return Ok(());
            }
            (Some(':'), Some(op @ ('-' | '+'))) => {
                self.pos += 1;
                (true, op)
            }
            (Some(op @ ('-' | '+')), _) => (false, op),
            (None, _) => return Err(SubstError::Unterminated("${")),
            _ => return Err(self.bad(start)),
        };
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(SubstError::TooDeep);
        }
        let alt = self.until_brace()?;
        self.depth -= 1;
        // `:-`/`:+` treat an empty value as unset; `-`/`+` only an unset one.
        let set = match &value {
            Some(v) => !(colon && v.is_empty()),
            None => false,
        };
        match (op, set) {
            ('-', true) => cur.push_str(&value.unwrap_or_default()),
            ('-', false) => cur.push_str(&alt),
            ('+', true) => cur.push_str(&alt),
            _ => {}
        }
        Ok(())
    }

    /// The word of a `${VAR:-word}` up to its closing brace (consumed).
    fn until_brace(&mut self) -> Result<String, SubstError> {
        let mut w = String::new();
        loop {
            match self.next() {
                Some('}') => return Ok(w),
                Some('\'') => self.single_quoted(&mut w)?,
                Some('"') => self.double_quoted(&mut w)?,
                Some('$') => self.dollar(&mut w)?,
                Some(c) if c == self.escape => match self.next() {
                    Some(n) => w.push(n),
                    None => return Err(SubstError::Unterminated("${")),
                },
                Some(c) => w.push(c),
                None => return Err(SubstError::Unterminated("${")),
            }
        }
    }

    fn bad(&self, start: usize) -> SubstError {
        let end = (start + 40).min(self.chars.len());
        SubstError::Bad(format!(
            "${{{}",
            self.chars[start..end].iter().collect::<String>()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "A" => Some("alpha".into()),
            "SP" => Some("two words".into()),
            "EMPTY" => Some(String::new()),
            "DOLLAR" => Some("$A".into()),
            _ => None,
        }
    }

    fn w(s: &str) -> Vec<String> {
        words(s, '\\', &env).unwrap()
    }

    #[test]
    fn every_form_expands() {
        assert_eq!(w("$A ${A} x${A}y"), ["alpha", "alpha", "xalphay"]);
        assert_eq!(
            w("${NOPE:-def} ${A:-def} ${EMPTY:-def} ${EMPTY-def}"),
            ["def", "alpha", "def"]
        );
        assert_eq!(w("${A:+alt} ${NOPE:+alt} ${EMPTY+set}"), ["alt", "set"]);
        assert_eq!(w("${NOPE:-${A}-x}"), ["alpha-x"]);
        assert_eq!(w("$NOPE"), Vec::<String>::new());
    }

    #[test]
    fn quotes_and_escapes_as_docker() {
        assert_eq!(w(r#"'$A' "$A b" \$A a\ b"#), ["$A", "alpha b", "$A", "a b"]);
        assert_eq!(w(r#""" x"#), ["", "x"]);
        assert_eq!(w(r#""a\"b" "c\d""#), ["a\"b", "c\\d"]);
        assert_eq!(words("`$A", '`', &env).unwrap(), ["$A"]);
        assert_eq!(w("$ $1 a$"), ["$", "$1", "a$"]);
    }

    #[test]
    fn values_are_not_split_or_reexpanded() {
        assert_eq!(w("$SP"), ["two words"]);
        assert_eq!(w("$DOLLAR"), ["$A"]);
        assert_eq!(word("  $SP  'q' ", '\\', &env).unwrap(), "  two words  q ");
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        for (s, want) in [
            ("'open", "unterminated single quote"),
            ("\"open", "unterminated double quote"),
            ("${A", "unterminated ${"),
            ("${A:-x", "unterminated ${"),
            ("${}", "bad substitution"),
            ("${A?x}", "bad substitution"),
            ("${1}", "bad substitution"),
        ] {
            let e = words(s, '\\', &env).unwrap_err().to_string();
            assert!(e.contains(want), "{s:?}: {e}");
        }
        let deep = format!("{}x{}", "${A:-".repeat(100), "}".repeat(100));
        assert_eq!(words(&deep, '\\', &env), Err(SubstError::TooDeep));
        // Trailing escape is kept literally, as docker does.
        assert_eq!(w("a\\"), ["a\\"]);
    }
}
