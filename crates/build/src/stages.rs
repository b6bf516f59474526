//! Which stages a build needs. Like BuildKit (and unlike docker's legacy
//! builder), vessel builds only the stages the target depends on — through
//! `FROM <stage>` or `COPY --from=<stage>` — so a Containerfile with a test
//! or debug stage does not pay for it when building the release stage.

use crate::parse::{Instruction, Keyword};

/// `needed[i]`: whether stage `i` (of `stages[..=target]`) must be built.
/// `base(i)` is the image word of stage `i`'s FROM after ARG substitution
/// (`None` when it cannot be read; that stage's FROM then names no stage).
/// A `COPY --from` whose value holds a variable cannot be resolved before
/// the build: every earlier stage is then needed, to be safe.
pub fn needed(
    stages: &[Vec<Instruction>],
    names: &[Option<String>],
    target: usize,
    base: impl Fn(usize) -> Option<String>,
) -> Vec<bool> {
    let mut needed = vec![false; target + 1];
    let mut todo = vec![target];
    while let Some(i) = todo.pop() {
        if needed[i] {
            continue;
        }
        needed[i] = true;
        let mut refs: Vec<String> = base(i).into_iter().collect();
        for ins in &stages[i][1..] {
            if ins.keyword != Keyword::Copy {
                continue;
            }
            match ins.flag("from") {
                Some(f) if f.contains('$') => todo.extend(0..i),
                Some(f) => refs.push(f.to_string()),
                None => {}
            }
        }
        for r in refs {
            if let Some(j) = resolve(&r, &names[..i]) {
                todo.push(j);
            }
        }
    }
    needed
}

/// The earlier stage `what` names: by index or (case-insensitively) by name.
fn resolve(what: &str, earlier: &[Option<String>]) -> Option<usize> {
    if let Ok(n) = what.parse::<usize>() {
        return (n < earlier.len()).then_some(n);
    }
    earlier
        .iter()
        .position(|n| n.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(what)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse;

    fn plan(text: &str, target: usize) -> Vec<bool> {
        let cf = parse("Containerfile", text).unwrap();
        let mut stages: Vec<Vec<Instruction>> = Vec::new();
        for i in cf.instructions {
            if i.keyword == Keyword::From {
                stages.push(vec![i]);
            } else if let Some(s) = stages.last_mut() {
                s.push(i);
            }
        }
        let words = |i: usize| -> Vec<String> {
            match &stages[i][0].args {
                crate::parse::Args::Shell(s) => s.split_whitespace().map(String::from).collect(),
                crate::parse::Args::Exec(v) => v.clone(),
            }
        };
        let names: Vec<Option<String>> = (0..stages.len())
            .map(|i| words(i).get(2).cloned())
            .collect();
        needed(&stages, &names, target, |i| words(i).first().cloned())
    }

    #[test]
    fn only_the_stages_the_target_uses() {
        let cf = "FROM busybox AS base\nRUN true\n\
                  FROM base AS test\nRUN false\n\
                  FROM busybox AS tools\nRUN true\n\
                  FROM scratch AS unused\n\
                  FROM base\nCOPY --from=tools /x /x\n";
        assert_eq!(plan(cf, 4), vec![true, false, true, false, true]);
        // By index, and a target in the middle.
        let cf = "FROM busybox\nFROM busybox\nFROM scratch\nCOPY --from=0 /a /a\n";
        assert_eq!(plan(cf, 2), vec![true, false, true]);
        assert_eq!(plan(cf, 1), vec![false, true]);
    }

    #[test]
    fn names_resolve_to_earlier_stages_only_and_variables_keep_everything() {
        // `FROM later` is an image, not the later stage; a stage cannot name itself.
        let cf =
            "FROM x AS a\nFROM a AS a\nFROM y AS later\nFROM scratch\nCOPY --from=later /l /l\n";
        assert_eq!(plan(cf, 1), vec![true, true]);
        assert_eq!(plan(cf, 3), vec![false, false, true, true]);
        let cf = "FROM x AS a\nFROM y AS b\nFROM scratch\nCOPY --from=${S} /s /s\n";
        assert_eq!(plan(cf, 2), vec![true, true, true]);
        // Out-of-range indexes name no stage.
        let cf = "FROM x\nFROM scratch\nCOPY --from=7 /s /s\n";
        assert_eq!(plan(cf, 1), vec![false, true]);
    }
}
