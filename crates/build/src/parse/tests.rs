use super::*;

fn ok(text: &str) -> Vec<Instruction> {
    parse("Containerfile", text).unwrap().instructions
}

fn fails(text: &str) -> ParseError {
    parse("dir/Containerfile", text).unwrap_err()
}

#[test]
fn forms_flags_continuations_and_lines() {
    let i = ok("# syntax=docker/dockerfile:1\n\
                # a comment\n\
                ARG V=1\n\
                \n\
                FROM busybox:${V} AS base\n\
                RUN echo a \\\n\
                # dropped comment\n\
                \n\
                    && echo b\n\
                CMD [\"sh\", \"-c\", \"echo hi\"]\n\
                COPY --from=base --chown=1:2 /a /b\n\
                run [not json\n");
    assert_eq!(i.len(), 6);
    assert_eq!((i[0].keyword, i[0].line), (Keyword::Arg, 3));
    assert_eq!(i[1].args, Args::Shell("busybox:${V} AS base".into()));
    assert_eq!(i[2].line, 6);
    assert_eq!(i[2].args, Args::Shell("echo a && echo b".into()));
    assert_eq!(
        i[3].args,
        Args::Exec(vec!["sh".into(), "-c".into(), "echo hi".into()])
    );
    assert_eq!(i[4].flag("from"), Some("base"));
    assert_eq!(i[4].flag("chown"), Some("1:2"));
    assert_eq!(i[4].args, Args::Shell("/a /b".into()));
    assert_eq!(i[5].keyword, Keyword::Run, "keywords are case-insensitive");
    assert_eq!(i[5].args, Args::Shell("[not json".into()));
}

#[test]
fn escape_directive_switches_to_backtick() {
    let cf = parse(
        "f",
        "# escape=`\nFROM x\nRUN dir c:\\ `\n  && echo hi\r\nENV P=c:\\path\n",
    )
    .unwrap();
    assert_eq!(cf.escape, '`');
    assert_eq!(
        cf.instructions[1].args,
        Args::Shell("dir c:\\   && echo hi".into())
    );
    // A directive after a comment is only a comment.
    let cf = parse("f", "# hello\n# escape=`\nFROM x\n").unwrap();
    assert_eq!(cf.escape, '\\');
}

#[test]
fn syntax_errors_name_file_and_line() {
    for (text, line, want) in [
        ("FROM x\nBOGUS y\n", 2, "unknown instruction: BOGUS"),
        ("FROM x\n\nRUN\n", 3, "RUN needs at least one argument"),
        (
            "FROM x\nCOPY --mount=x a b\n",
            2,
            "does not take the option --mount",
        ),
        (
            "FROM x\nRUN --network=none true\n",
            2,
            "RUN does not take the option",
        ),
        ("FROM x\nCOPY --from a b\n", 2, "--from needs a value"),
        (
            "FROM x\nSHELL /bin/bash -c\n",
            2,
            "SHELL needs a JSON array",
        ),
        ("FROM x\nSHELL []\n", 2, "SHELL needs at least one argument"),
        ("# escape=x\nFROM x\n", 1, "invalid escape character"),
        ("# escape=\\\n# escape=\\\n", 2, "given twice"),
        (
            "FROM x\nHEALTHCHECK CMD true\n",
            2,
            "HEALTHCHECK is not supported",
        ),
        (
            "FROM x\nRUN a \\\nb\n\u{1b}[31m x\n",
            4,
            "unknown instruction",
        ),
    ] {
        let e = fails(text);
        assert_eq!(e.line, line, "{text:?}: {e}");
        let shown = e.to_string();
        assert!(
            shown.starts_with(&format!("dir/Containerfile:{line}: ")) && shown.contains(want),
            "{text:?}: {shown}"
        );
    }
}

#[test]
fn malicious_input_gives_errors_not_panics() {
    let huge_line = format!("RUN {}\n", "x".repeat(1 << 20));
    assert_eq!(ok(&huge_line)[0].line, 1);
    let many_continuations = format!("RUN a {}\n", "\\\n".repeat(10_000));
    assert_eq!(ok(&many_continuations).len(), 1);
    let trailing = ok("RUN a \\");
    assert_eq!(trailing[0].args, Args::Shell("a".into()));
    // A control character in a keyword is shown escaped, not raw.
    let e = fails("\u{7}\u{1b}[2J\n");
    assert!(!e.message.contains('\u{1b}'), "{e}");
    for bytes in [
        "\u{0}".to_string(),
        "FROM\u{0}x".into(),
        "[[[[".into(),
        "--=\n".into(),
        "FROM x\nCOPY --=".into(),
        "é".repeat(100),
        "RUN [\"\\ud800\"]".into(),
        "#".into(),
        "\\".into(),
        "FROM \\\n\\\n\\".into(),
    ] {
        let _ = parse("f", &bytes);
    }
    assert!(ok("").is_empty());
    assert!(ok("\n\n# only comments\n").is_empty());
}
