//! The purpose-built guests of the microVM tests (crates/vmm/tests/guests),
//! assembled, compiled and linked at test time, and the KVM check every
//! such test starts with. Used by the vmm crate's tests and the `vessel vm`
//! tests of the CLI.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the guests' sources are.
pub fn guests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../vmm/tests/guests")
}

/// Panics (never skips) when the host has no usable KVM.
pub fn require_kvm() {
    assert!(
        Path::new("/dev/kvm").exists(),
        "/dev/kvm is missing: the microVM tests need KVM (load kvm_intel/kvm_amd, or run on a host with virtualization)"
    );
}

/// Assembles and links `crates/vmm/tests/guests/NAME.s` into an ELF in `dir`.
pub fn build_guest(name: &str, dir: &Path) -> PathBuf {
    let guests = guests_dir();
    let obj = dir.join(format!("{name}.o"));
    let elf = dir.join(name);
    run(Command::new("as")
        .arg("--64")
        // `.include` of another guest (counter_fast.s includes counter.s).
        .arg("-I")
        .arg(&guests)
        .arg("-o")
        .arg(&obj)
        .arg(guests.join(format!("{name}.s"))));
    link(&[&obj], &elf);
    elf
}

/// Builds the C guest `crates/vmm/tests/guests/NAME.c` (with `virtio_entry.s`, which
/// boots it by the 64-bit Linux protocol) into an ELF in `dir`.
pub fn build_c_guest(name: &str, dir: &Path) -> PathBuf {
    let guests = guests_dir();
    let entry = dir.join("virtio_entry.o");
    let obj = dir.join(format!("{name}.o"));
    let elf = dir.join(name);
    run(Command::new("as")
        .arg("--64")
        .arg("-o")
        .arg(&entry)
        .arg(guests.join("virtio_entry.s")));
    run(Command::new("gcc")
        .args([
            "-c",
            "-ffreestanding",
            "-nostdlib",
            "-fno-pic",
            "-mno-red-zone",
            "-mgeneral-regs-only",
            "-O1",
            "-fno-stack-protector",
            "-fno-asynchronous-unwind-tables",
            "-fcf-protection=none",
            "-fno-builtin",
            "-Wall",
            "-Werror",
            "-o",
        ])
        .arg(&obj)
        .arg(guests.join(format!("{name}.c"))));
    link(&[&entry, &obj], &elf);
    elf
}

/// Links `objs` into the ELF `elf` with the guests' linker script.
fn link(objs: &[&Path], elf: &Path) {
    run(Command::new("ld")
        .args([
            "-m",
            "elf_x86_64",
            "-nostdlib",
            "-static",
            "--build-id=none",
            "--no-warn-rwx-segments",
            "-z",
            "noexecstack",
            "-T",
        ])
        .arg(guests_dir().join("link.ld"))
        .arg("-o")
        .arg(elf)
        .args(objs));
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run {cmd:?} ({e}); install binutils (scripts/install-deps.sh)")
    });
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
