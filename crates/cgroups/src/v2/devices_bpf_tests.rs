//! The device program's decisions, run in the small interpreter of `bpf_insn`, and the
//! checks of malformed rules.

use serde_json::json;

use super::*;
use crate::fake_tree::resources;
use crate::v2::bpf_insn::{interpreter::run, EXIT, LDX_W, MOV64_IMM};

const BLOCK: u32 = 1;
const CHAR: u32 = 2;
const M: u32 = 1;
const R: u32 = 2;
const W: u32 = 4;

fn compile(rules: serde_json::Value) -> Vec<Insn> {
    plan(&resources(json!({ "devices": rules })))
        .unwrap()
        .expect("rules give a filter")
        .instructions()
        .to_vec()
}

/// What the program decides for `access` to the device `type major:minor`.
fn allows(program: &[Insn], dev_type: u32, major: u32, minor: u32, access: u32) -> bool {
    match run(program, [(access << 16) | dev_type, major, minor]) {
        0 => false,
        1 => true,
        other => panic!("the program returned {other}"),
    }
}

#[test]
fn the_usual_runtime_list_allows_only_its_devices() {
    let program = compile(json!([
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
        {"allow": true, "type": "c", "major": 136, "access": "rwm"},
        {"allow": true, "type": "c", "major": 5, "minor": 2, "access": "rw"},
    ]));
    assert!(allows(&program, CHAR, 1, 3, R | W));
    assert!(allows(&program, CHAR, 1, 3, M));
    assert!(allows(&program, CHAR, 1, 5, R));
    assert!(allows(&program, CHAR, 136, 0, R | W));
    assert!(allows(&program, CHAR, 136, 77, W));
    assert!(allows(&program, CHAR, 5, 2, R | W));
    // mknod of /dev/ptmx is not among its letters.
    assert!(!allows(&program, CHAR, 5, 2, M));
    // Same numbers, other type; other numbers; the default is deny.
    assert!(!allows(&program, BLOCK, 1, 3, R));
    assert!(!allows(&program, CHAR, 1, 7, R));
    assert!(!allows(&program, BLOCK, 8, 0, R | W));
}

#[test]
fn the_last_matching_rule_wins() {
    let program = compile(json!([
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 3},
        {"allow": false, "type": "c", "major": 1, "minor": 3, "access": "w"},
    ]));
    assert!(allows(&program, CHAR, 1, 3, R));
    assert!(!allows(&program, CHAR, 1, 3, W));
    // A deny rule matches when any denied access is requested.
    assert!(!allows(&program, CHAR, 1, 3, R | W));

    let program = compile(json!([
        {"allow": false, "access": "rwm"},
        {"allow": false, "type": "c", "major": 1, "minor": 3, "access": "w"},
        {"allow": true, "type": "c", "major": 1, "minor": 3},
    ]));
    assert!(allows(&program, CHAR, 1, 3, R | W));
}

#[test]
fn an_allow_rule_needs_every_requested_access() {
    let program = compile(json!([
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "r"},
        {"allow": true, "type": "b", "major": 8, "minor": 0, "access": "mw"},
    ]));
    assert!(allows(&program, CHAR, 1, 5, R));
    assert!(!allows(&program, CHAR, 1, 5, W));
    assert!(!allows(&program, CHAR, 1, 5, R | W));
    assert!(!allows(&program, CHAR, 1, 5, M));
    assert!(allows(&program, BLOCK, 8, 0, M));
    assert!(allows(&program, BLOCK, 8, 0, W | M));
    assert!(!allows(&program, BLOCK, 8, 0, R));
}

#[test]
fn wildcards_match_any_type_and_number() {
    let program = compile(json!([
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "a", "major": 1, "minor": 3},
        {"allow": true, "type": "b", "major": -1, "minor": 0, "access": "r"},
        {"allow": true, "type": "u", "major": 4},
    ]));
    assert!(allows(&program, CHAR, 1, 3, R | W | M));
    assert!(allows(&program, BLOCK, 1, 3, R | W | M));
    assert!(allows(&program, BLOCK, 8, 0, R));
    assert!(allows(&program, BLOCK, 259, 0, R));
    assert!(!allows(&program, BLOCK, 8, 1, R));
    assert!(!allows(&program, CHAR, 8, 0, R));
    // "u" is a character device.
    assert!(allows(&program, CHAR, 4, 64, R | W));
    assert!(!allows(&program, BLOCK, 4, 64, R));
}

#[test]
fn without_a_rule_over_everything_the_default_is_allow() {
    let program = compile(json!([
        {"allow": false, "type": "b", "major": 8},
    ]));
    assert!(!allows(&program, BLOCK, 8, 0, R));
    assert!(allows(&program, BLOCK, 9, 0, R));
    assert!(allows(&program, CHAR, 8, 0, R));
    // The last rule over everything decides the default, and rules before it are dropped.
    let program = compile(json!([
        {"allow": true, "type": "c", "major": 1, "minor": 3},
        {"allow": false},
        {"allow": true, "type": "c", "major": 1, "minor": 5},
    ]));
    assert!(!allows(&program, CHAR, 1, 3, R));
    assert!(allows(&program, CHAR, 1, 5, R));
    let program = compile(json!([
        {"allow": false, "type": "c", "major": 1, "minor": 3},
        {"allow": true, "type": "a", "major": -1, "minor": -1, "access": "mwr"},
    ]));
    assert!(allows(&program, CHAR, 1, 3, R));
}

#[test]
fn the_program_tests_the_rules_from_the_last() {
    let program = compile(json!([
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 3},
        {"allow": true, "type": "b", "major": 8, "minor": 0},
    ]));
    // 6 context loads, 2 rules of (3 tests + verdict + exit), the default.
    assert_eq!(program.len(), 6 + 2 * 5 + 2);
    assert!(program[..6]
        .iter()
        .filter(|i| i.code == LDX_W)
        .all(|i| [0, 4, 8].contains(&i.off)));
    // The first block tests the last rule: block device 8:0.
    assert_eq!((program[6].imm, program[7].imm, program[8].imm), (1, 8, 0));
    assert_eq!(
        (program[11].imm, program[12].imm, program[13].imm),
        (2, 1, 3)
    );
    // Failed tests jump to the next block.
    assert_eq!([program[6].off, program[7].off, program[8].off], [4, 3, 2]);
    let end = &program[program.len() - 2..];
    assert_eq!((end[0].code, end[0].imm, end[1].code), (MOV64_IMM, 0, EXIT));
}

#[test]
fn no_rules_give_no_filter() {
    assert!(plan(&resources(json!({"devices": []}))).unwrap().is_none());
    assert!(plan(&resources(json!({}))).unwrap().is_none());
}

#[test]
fn malformed_rules_name_the_field() {
    let cases = [
        (json!({"allow": true, "access": "rx"}), "devices[1].access"),
        (json!({"allow": true, "access": "rr"}), "devices[1].access"),
        (
            json!({"allow": true, "access": "rwm\nc"}),
            "devices[1].access",
        ),
        (json!({"allow": true, "type": "p"}), "devices[1].type"),
        (json!({"allow": true, "major": -2}), "devices[1].major"),
        (
            json!({"allow": true, "minor": 4294967296_i64}),
            "devices[1].minor",
        ),
    ];
    for (rule, field) in cases {
        let json = json!({"devices": [{"allow": false}, rule]});
        let error = plan(&resources(json)).unwrap_err().to_string();
        assert!(
            error.contains(&format!("linux.resources.{field}")),
            "{rule}: {error}"
        );
    }
}

#[test]
fn an_unknown_type_is_refused_when_the_spec_is_read() {
    // oci-spec's enum has no "x": such a spec never reaches this crate.
    let error = serde_json::from_value::<LinuxResources>(
        json!({"devices": [{"allow": true, "type": "x"}]}),
    )
    .unwrap_err();
    assert!(error.to_string().contains('x'), "{error}");
}
