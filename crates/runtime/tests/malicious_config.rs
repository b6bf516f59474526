//! config.json is untrusted: whatever bytes it holds, parsing and validation
//! must answer with an error (or a valid spec), never panic or hang.
//! A deterministic mutation run so that CI exercises it on every build; the
//! cargo-fuzz target in fuzz/ explores further.

use vessel_runtime::bundle::{parse_config, validate};

const VALID: &str = r#"{
  "ociVersion": "1.0.2",
  "process": {"terminal": false, "user": {"uid": 0, "gid": 0, "additionalGids": [1, 2]},
    "args": ["sh", "-c", "true"], "env": ["PATH=/bin"], "cwd": "/",
    "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"]},
    "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}], "noNewPrivileges": true},
  "root": {"path": "rootfs", "readonly": true},
  "hostname": "box",
  "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/data", "type": "bind", "source": "/tmp", "options": ["rbind", "ro"]}],
  "hooks": {"prestart": [{"path": "/bin/true", "timeout": 5}]},
  "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "uts"}],
    "resources": {"memory": {"limit": 33554432}, "pids": {"limit": 20},
      "devices": [{"allow": false, "access": "rwm"}]},
    "maskedPaths": ["/proc/kcore"], "readonlyPaths": ["/proc/sys"],
    "seccomp": {"defaultAction": "SCMP_ACT_ALLOW",
      "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 1, "value": 2, "op": "SCMP_CMP_EQ"}]}]}}
}"#;

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn check(bytes: &[u8]) {
    if let Ok(spec) = parse_config(bytes) {
        let _ = validate(&spec);
    }
}

#[test]
fn the_valid_base_is_valid() {
    let spec = parse_config(VALID.as_bytes()).expect("base parses");
    validate(&spec).expect("base validates");
}

#[test]
fn random_mutations_never_panic() {
    let tokens: [&[u8]; 12] = [
        b"null",
        b"-1",
        b"18446744073709551616",
        b"\"\\u0000\"",
        b"[]",
        b"{}",
        b"\"../../..\"",
        b"1e308",
        b"\"CAP_NOPE\"",
        b"true",
        b"\"\xff\xfe\"",
        b"-9223372036854775809",
    ];
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    for _ in 0..4000 {
        let mut data = VALID.as_bytes().to_vec();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(data.len());
            match rng.below(4) {
                0 => data[at] = rng.next() as u8,
                1 => data.truncate(at),
                2 => {
                    let t = tokens[rng.below(tokens.len())];
                    data.splice(at..at, t.iter().copied());
                }
                _ => {
                    // Replace a JSON value after a ':' with a hostile token.
                    if let Some(colon) = data[at..].iter().position(|b| *b == b':') {
                        let start = at + colon + 1;
                        let end = data[start..]
                            .iter()
                            .position(|b| *b == b',' || *b == b'}')
                            .map_or(data.len(), |e| start + e);
                        let t = tokens[rng.below(tokens.len())];
                        data.splice(start..end, t.iter().copied());
                    }
                }
            }
            if data.is_empty() {
                break;
            }
        }
        check(&data);
    }
}

#[test]
fn deep_nesting_does_not_overflow_the_stack() {
    // Unknown fields are skipped; 100k levels of nesting in one must neither
    // crash the runtime nor let an otherwise empty config through.
    let deep = format!(
        "{{\"unknownField\": {}{}}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    if let Ok(spec) = parse_config(deep.as_bytes()) {
        let err = validate(&spec).unwrap_err().to_string();
        assert!(err.contains("ociVersion"), "{err}");
    }
    let typed = format!(
        "{{\"ociVersion\": \"1.0.2\", \"annotations\": {}{}}}",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let err = parse_config(typed.as_bytes()).unwrap_err();
    assert_eq!(err.0, "annotations");
}

#[test]
fn huge_strings_are_handled() {
    let big = "A".repeat(4 << 20);
    let json = VALID.replace("\"box\"", &format!("\"{big}\""));
    let spec = parse_config(json.as_bytes()).expect("parses");
    let err = validate(&spec).unwrap_err().to_string();
    assert!(err.contains("hostname"), "{err}");
}
