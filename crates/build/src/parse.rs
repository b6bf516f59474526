//! The Containerfile (Dockerfile) parser: bytes -> instructions with their
//! line numbers, flags and arguments in exec (JSON) or shell form.
//!
//! Handled: the `# escape=` directive (`\` or `` ` ``; `# syntax=` is
//! accepted and ignored), comments, blank lines, line continuations with the
//! escape character (comment and blank lines inside a continuation are
//! dropped, as docker does), `--flag=value` options, and the JSON form for
//! the instructions that have one (a `[` that is not a JSON array of
//! strings is shell form, as in docker). Variables are *not* substituted
//! here: that needs the ARG/ENV state of the build (see `subst`).
//!
//! The input is untrusted: every error is a [`ParseError`] naming the file
//! and line; nothing panics (fuzzed by `fuzz/fuzz_targets/containerfile.rs`).

use std::fmt;

/// A syntax error, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct ParseError {
    /// The Containerfile's name as the user gave it.
    pub file: String,
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// Every instruction vessel knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Keyword {
    /// `FROM`
    From,
    /// `RUN`
    Run,
    /// `CMD`
    Cmd,
    /// `ENTRYPOINT`
    Entrypoint,
    /// `COPY`
    Copy,
    /// `ADD`
    Add,
    /// `ENV`
    Env,
    /// `ARG`
    Arg,
    /// `WORKDIR`
    Workdir,
    /// `USER`
    User,
    /// `EXPOSE`
    Expose,
    /// `LABEL`
    Label,
    /// `VOLUME`
    Volume,
    /// `SHELL`
    Shell,
    /// `STOPSIGNAL`
    Stopsignal,
    /// `MAINTAINER` (deprecated: sets the author)
    Maintainer,
}

impl Keyword {
    fn parse(word: &str) -> Result<Keyword, String> {
        Ok(match word.to_ascii_uppercase().as_str() {
            "FROM" => Keyword::From,
            "RUN" => Keyword::Run,
            "CMD" => Keyword::Cmd,
            "ENTRYPOINT" => Keyword::Entrypoint,
            "COPY" => Keyword::Copy,
            "ADD" => Keyword::Add,
            "ENV" => Keyword::Env,
            "ARG" => Keyword::Arg,
            "WORKDIR" => Keyword::Workdir,
            "USER" => Keyword::User,
            "EXPOSE" => Keyword::Expose,
            "LABEL" => Keyword::Label,
            "VOLUME" => Keyword::Volume,
            "SHELL" => Keyword::Shell,
            "STOPSIGNAL" => Keyword::Stopsignal,
            "MAINTAINER" => Keyword::Maintainer,
            "ONBUILD" | "HEALTHCHECK" => {
                return Err(format!(
                    "{} is not supported by vessel build yet",
                    word.to_ascii_uppercase()
                ))
            }
            _ => return Err(format!("unknown instruction: {}", printable(word))),
        })
    }

    /// The flags (`--name=value`) this instruction accepts.
    fn flags(self) -> &'static [&'static str] {
        match self {
            Keyword::From => &["platform"],
            Keyword::Copy => &["from", "chown", "chmod"],
            Keyword::Add => &["chown", "chmod"],
            _ => &[],
        }
    }

    /// Whether the arguments may be a JSON array.
    fn has_exec_form(self) -> bool {
        matches!(
            self,
            Keyword::Run
                | Keyword::Cmd
                | Keyword::Entrypoint
                | Keyword::Shell
                | Keyword::Copy
                | Keyword::Add
                | Keyword::Volume
        )
    }
}

impl fmt::Display for Keyword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format!("{self:?}").to_ascii_uppercase())
    }
}

/// An instruction's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Args {
    /// `["a", "b"]`.
    Exec(Vec<String>),
    /// Everything after the keyword and flags, as written (continuations joined).
    Shell(String),
}

/// One `--name=value` option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flag {
    /// Without the dashes.
    pub name: String,
    /// After the `=`.
    pub value: String,
}

/// One instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// The line it starts on (1-based).
    pub line: usize,
    /// Which.
    pub keyword: Keyword,
    /// Its options.
    pub flags: Vec<Flag>,
    /// Its arguments.
    pub args: Args,
    /// The logical line as written (for messages and history).
    pub text: String,
}

impl Instruction {
    /// The value of flag `name`, if given.
    pub fn flag(&self, name: &str) -> Option<&str> {
        self.flags
            .iter()
            .rev()
            .find(|f| f.name == name)
            .map(|f| f.value.as_str())
    }
}

/// A parsed Containerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Containerfile {
    /// Its name (for messages).
    pub file: String,
    /// The escape character (`\` unless `# escape=` says otherwise).
    pub escape: char,
    /// The instructions in order.
    pub instructions: Vec<Instruction>,
}

/// Parse `text`, naming `file` in errors.
pub fn parse(file: &str, text: &str) -> Result<Containerfile, ParseError> {
    let err = |line: usize, message: String| ParseError {
        file: file.to_string(),
        line,
        message,
    };
    let lines: Vec<&str> = text.split('\n').collect();
    let mut escape = '\\';
    let mut i = 0;
    // Directives: only at the very top, before any other line.
    let mut seen_escape = false;
    while i < lines.len() {
        let Some((key, value)) = directive(lines[i]) else {
            break;
        };
        if key == "escape" {
            if seen_escape {
                return Err(err(i + 1, "the escape directive is given twice".into()));
            }
            seen_escape = true;
            escape = match value.as_str() {
                "\\" => '\\',
                "`" => '`',
                v => {
                    return Err(err(
                        i + 1,
                        format!("invalid escape character {:?}: use \\ or `", printable(v)),
                    ))
                }
            };
        }
        i += 1;
    }

    let mut instructions = Vec::new();
    while i < lines.len() {
        let start = i;
        let first = lines[i].trim_end_matches('\r');
        i += 1;
        if is_blank_or_comment(first) {
            continue;
        }
        let mut logical = String::new();
        let mut cur = first;
        loop {
            let trimmed = cur.trim_end();
            match trimmed.strip_suffix(escape) {
                Some(body) => {
                    logical.push_str(body);
                    // Skip comment and blank lines inside the continuation.
                    while i < lines.len() && is_blank_or_comment(lines[i].trim_end_matches('\r')) {
                        i += 1;
                    }
                    if i >= lines.len() {
                        break;
                    }
                    cur = lines[i].trim_end_matches('\r');
                    i += 1;
                }
                _ => {
                    logical.push_str(cur);
                    break;
                }
            }
        }
        instructions.push(instruction(&logical, start + 1).map_err(|m| err(start + 1, m))?);
    }
    Ok(Containerfile {
        file: file.to_string(),
        escape,
        instructions,
    })
}

fn is_blank_or_comment(line: &str) -> bool {
    let t = line.trim_start();
    t.is_empty() || t.starts_with('#')
}

/// `# key=value` with a lowercase-able word key; `None` if this is not a
/// directive line.
fn directive(line: &str) -> Option<(String, String)> {
    let rest = line.trim_start().strip_prefix('#')?;
    let (key, value) = rest.split_once('=')?;
    let key = key.trim().to_ascii_lowercase();
    if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphabetic()) {
        return None;
    }
    Some((key, value.trim().to_string()))
}

fn instruction(logical: &str, line: usize) -> Result<Instruction, String> {
    let text = logical.trim();
    let kw_end = text.find(char::is_whitespace).unwrap_or(text.len());
    let keyword = Keyword::parse(&text[..kw_end])?;
    let mut rest = text[kw_end..].trim_start();
    let mut flags = Vec::new();
    while let Some(after) = rest.strip_prefix("--") {
        let end = after.find(char::is_whitespace).unwrap_or(after.len());
        let (name, value) = match after[..end].split_once('=') {
            Some((n, v)) => (n, v),
            None => (&after[..end], ""),
        };
        if !keyword.flags().contains(&name) {
            return Err(format!(
                "{keyword} does not take the option --{}",
                printable(name)
            ));
        }
        if value.is_empty() {
            return Err(format!("{keyword} --{name} needs a value (--{name}=VALUE)"));
        }
        flags.push(Flag {
            name: name.to_string(),
            value: value.to_string(),
        });
        rest = after[end..].trim_start();
    }
    if rest.is_empty() {
        return Err(format!("{keyword} needs at least one argument"));
    }
    let args = match exec_form(rest) {
        Some(v) if keyword.has_exec_form() => Args::Exec(v),
        _ if keyword == Keyword::Shell => {
            return Err(
                "SHELL needs a JSON array of strings, e.g. SHELL [\"/bin/sh\", \"-c\"]".into(),
            )
        }
        _ => Args::Shell(rest.to_string()),
    };
    if let Args::Exec(v) = &args {
        if v.is_empty() && matches!(keyword, Keyword::Shell | Keyword::Copy | Keyword::Add) {
            return Err(format!("{keyword} needs at least one argument"));
        }
    }
    Ok(Instruction {
        line,
        keyword,
        flags,
        args,
        text: text.to_string(),
    })
}

fn exec_form(rest: &str) -> Option<Vec<String>> {
    if !rest.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(rest.trim_end()).ok()
}

/// At most 40 characters, control characters escaped (for messages).
fn printable(s: &str) -> String {
    let cut: String = s.chars().take(40).collect();
    cut.escape_debug().to_string()
}

#[cfg(test)]
mod tests;
