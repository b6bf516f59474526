//! The `--config-file` JSON is untrusted: whatever bytes it holds, parsing
//! and conversion must answer with an error or a valid config, never panic
//! or hang. A deterministic mutation run for CI; the cargo-fuzz target
//! fuzz/fuzz_targets/vm_config.rs explores further.

use vessel_vmm::config::file::parse;
use vessel_vmm::config::{MAX_MEM_MIB, MAX_VCPUS, MIN_MEM_MIB};

const VALID: &str = r#"{
  "boot-source": {"kernel_image_path": "/srv/vmlinux", "initrd_path": "/srv/initrd",
    "boot_args": "console=ttyS0 reboot=k panic=1"},
  "drives": [], "network-interfaces": [], "vsock": null, "balloon": null,
  "machine-config": {"vcpu_count": 2, "mem_size_mib": 256, "smt": false,
    "track_dirty_pages": false, "huge_pages": "None", "cpu_template": "None"},
  "logger": {"log_path": "/tmp/vm.log", "level": "Info", "show_level": true}
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

/// Whatever is accepted must be within vessel's limits.
fn check(bytes: &[u8]) {
    if let Ok(file) = parse(bytes) {
        if let Ok(c) = file.to_vm_config() {
            assert!((1..=MAX_VCPUS).contains(&c.vcpus), "{c:?}");
            assert!((MIN_MEM_MIB..=MAX_MEM_MIB).contains(&c.memory_mib), "{c:?}");
            assert!(!c.kernel.as_os_str().is_empty(), "{c:?}");
            assert!(c.cmdline.chars().all(|c| matches!(c, ' '..='~')), "{c:?}");
        }
    }
}

#[test]
fn the_valid_base_is_valid() {
    let c = parse(VALID.as_bytes())
        .expect("parses")
        .to_vm_config()
        .expect("valid");
    assert_eq!((c.vcpus, c.memory_mib), (2, 256));
}

#[test]
fn random_mutations_never_panic() {
    let tokens: [&[u8]; 14] = [
        b"null",
        b"-1",
        b"0",
        b"255",
        b"18446744073709551616",
        b"\"\\u0000\"",
        b"[]",
        b"[{}]",
        b"{}",
        b"1e308",
        b"\"2M\"",
        b"true",
        b"\"\xff\xfe\"",
        b"-9223372036854775809",
    ];
    let mut rng = Rng(0x5eed_0004_abcd_0042);
    for _ in 0..6000 {
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
fn deep_nesting_is_refused_without_overflow() {
    // Inside an ignored section and inside a typed one.
    for section in ["vsock", "drives", "machine-config"] {
        let deep = format!(
            r#"{{"boot-source": {{"kernel_image_path": "/k"}}, "{section}": {}{}}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        let err = parse(deep.as_bytes())
            .and_then(|f| f.to_vm_config())
            .expect_err("refused")
            .to_string();
        assert!(err.contains(section), "{err}");
    }
}

#[test]
fn huge_strings_are_handled() {
    let big = "A".repeat(4 << 20);
    let json = VALID.replace("console=ttyS0", &big);
    let err = parse(json.as_bytes())
        .expect("parses")
        .to_vm_config()
        .expect_err("too long")
        .to_string();
    assert!(err.contains("boot-source.boot_args"), "{err}");
}
