//! Snapshots in one process, through the library: the counting guest
//! (tests/guests/counter.s) is paused, snapshotted, its VM dropped, and a
//! new VM restored from the files goes on counting without a gap or a
//! repeat. Also: two vCPUs, a VM restored paused, a snapshot of a restored
//! VM, the sparse memory file, and refusals (running VM, same path).
//! Cross-process restore (the VMM killed) is in
//! crates/cli/tests/vm_snapshot.rs. Fails, never skips, without /dev/kvm.

mod common;

use std::path::Path;
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{build_guest, captured, require_kvm, text};
use vessel_vmm::builder::{Notify, VmEvent};
use vessel_vmm::snapshot::{load, SnapshotError};
use vessel_vmm::{start_vm, ConsoleOutput, RunningVm, VmConfig};

const READY: &str = "counter guest ready\n";
/// Only a hung VM ever waits this long.
const PATIENCE: Duration = Duration::from_secs(120);

fn notify() -> (Notify, Receiver<VmEvent>) {
    let (tx, rx) = channel();
    let tx = Mutex::new(tx);
    (
        Arc::new(move |e| {
            let _ = tx.lock().map(|t| t.send(e));
        }),
        rx,
    )
}

/// The numbers the guest printed, in order; `None` for a partial last line.
fn numbers(console: &str) -> Vec<u64> {
    let body = console
        .strip_prefix(READY)
        .unwrap_or_else(|| panic!("no banner: {console:?}"));
    let complete = &body[..body.rfind('\n').map_or(0, |i| i + 1)];
    complete
        .lines()
        .map(|l| {
            l.parse()
                .unwrap_or_else(|_| panic!("not a number: {l:?} in {console:?}"))
        })
        .collect()
}

/// Asserts that `console` counts 0, 1, 2, … with nothing missing or twice.
fn assert_counts(console: &str) -> u64 {
    let n = numbers(console);
    for (i, v) in n.iter().enumerate() {
        assert_eq!(*v, i as u64, "line {i} of {console:?}");
    }
    n.len() as u64
}

fn wait_lines(buf: &Arc<Mutex<Vec<u8>>>, lines: usize) {
    let start = Instant::now();
    while text(buf).matches('\n').count() < lines {
        assert!(start.elapsed() < PATIENCE, "guest stalled: {:?}", text(buf));
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn console_config(kernel: &Path) -> (VmConfig, Arc<Mutex<Vec<u8>>>) {
    let (config, buf) = captured(kernel);
    (config, buf)
}

/// Boots the counter, waits for a few lines, pauses, snapshots; returns
/// what it printed. The VM is dropped (its threads stopped) on return.
fn snapshot_counter(config: &VmConfig, buf: &Arc<Mutex<Vec<u8>>>, dir: &Path) -> String {
    let (notify, _events) = notify();
    let vm = start_vm(config, notify).expect("boot");
    wait_lines(buf, 4);
    vm.pause();
    let before = text(buf);
    vm.snapshot(&dir.join("state"), &dir.join("mem"))
        .expect("snapshot");
    // Paused: nothing more came out while the snapshot was written.
    assert_eq!(text(buf), before);
    vm.stop();
    before
}

fn restore(dir: &Path, resume: bool) -> (RunningVm, Arc<Mutex<Vec<u8>>>) {
    restore_from(dir, "state", "mem", resume)
}

fn restore_from(
    dir: &Path,
    state: &str,
    mem: &str,
    resume: bool,
) -> (RunningVm, Arc<Mutex<Vec<u8>>>) {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let mut config = VmConfig::new("");
    config.console = ConsoleOutput::Buffer(buf.clone());
    let (notify, _events) = notify();
    let vm =
        load::restore(&config, &dir.join(state), &dir.join(mem), resume, notify).expect("restore");
    (vm, buf)
}

#[test]
fn a_counting_guest_goes_on_after_restore_without_gap_or_repeat() {
    require_kvm();
    let dir = tempfile::tempdir().expect("tempdir");
    let guest = build_guest("counter", dir.path());
    let (config, buf) = console_config(&guest);
    let before = snapshot_counter(&config, &buf, dir.path());
    let counted = assert_counts(&before);
    assert!(counted >= 3, "{before:?}");

    let (vm, after) = restore(dir.path(), true);
    assert!(!vm.is_paused());
    wait_lines(&after, 5);
    vm.stop();
    let total = assert_counts(&format!("{before}{}", text(&after)));
    assert!(total >= counted + 4, "{total} after {counted}");

    // The memory file is guest memory's size, sparse on disk, and unchanged
    // by the restored guest's writes (MAP_PRIVATE).
    let mem = std::fs::metadata(dir.path().join("mem")).expect("mem file");
    assert_eq!(mem.len(), 32 << 20);
    use std::os::unix::fs::MetadataExt;
    assert!(mem.blocks() * 512 < 4 << 20, "{} blocks", mem.blocks());
    // A second restore from the same files counts from the same point.
    let (vm, again) = restore(dir.path(), true);
    wait_lines(&again, 3);
    vm.stop();
    assert_counts(&format!("{before}{}", text(&again)));
}

#[test]
fn two_vcpus_a_paused_restore_and_a_snapshot_of_a_restored_vm() {
    require_kvm();
    let dir = tempfile::tempdir().expect("tempdir");
    let guest = build_guest("counter", dir.path());
    let (mut config, buf) = console_config(&guest);
    config.vcpus = 2;
    let before = snapshot_counter(&config, &buf, dir.path());

    // Restored paused: nothing runs until resume.
    let (vm, after) = restore(dir.path(), false);
    assert!(vm.is_paused());
    assert!(matches!(
        vm.snapshot(&dir.path().join("s"), &dir.path().join("s")),
        Err(SnapshotError::SamePath(_))
    ));
    // A snapshot of a VM restored paused is the same machine again.
    vm.snapshot(&dir.path().join("state2"), &dir.path().join("mem2"))
        .expect("snapshot of a paused restore");
    assert_eq!(text(&after), "");
    vm.resume();
    wait_lines(&after, 3);
    vm.pause();
    let middle = text(&after);
    // Snapshot of a restored, memory-file-backed VM that ran on.
    vm.snapshot(&dir.path().join("state3"), &dir.path().join("mem3"))
        .expect("second snapshot");
    vm.resume();
    assert!(matches!(
        vm.snapshot(&dir.path().join("x"), &dir.path().join("y")),
        Err(SnapshotError::NotPaused)
    ));
    vm.stop();
    let counted = assert_counts(&format!("{before}{middle}"));

    let (vm, third) = restore_from(dir.path(), "state3", "mem3", true);
    wait_lines(&third, 3);
    vm.stop();
    let total = assert_counts(&format!("{before}{middle}{}", text(&third)));
    assert!(total > counted);

    let (vm, second) = restore_from(dir.path(), "state2", "mem2", true);
    wait_lines(&second, 3);
    vm.stop();
    assert_counts(&format!("{before}{}", text(&second)));
}

#[test]
fn broken_snapshots_are_refused_before_anything_is_built() {
    require_kvm();
    let dir = tempfile::tempdir().expect("tempdir");
    let guest = build_guest("counter", dir.path());
    let (config, buf) = console_config(&guest);
    snapshot_counter(&config, &buf, dir.path());
    let state = std::fs::read(dir.path().join("state")).expect("state");
    let try_restore = |state_bytes: &[u8], mem_len: Option<u64>| {
        let d = tempfile::tempdir().expect("tempdir");
        std::fs::write(d.path().join("state"), state_bytes).expect("write");
        std::fs::copy(dir.path().join("mem"), d.path().join("mem")).expect("copy");
        if let Some(len) = mem_len {
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(d.path().join("mem"))
                .expect("mem");
            f.set_len(len).expect("resize");
        }
        let console = d.path().join("console");
        let mut config = VmConfig::new("");
        config.console = ConsoleOutput::File(console.clone());
        let (notify, _events) = notify();
        let err = load::restore(
            &config,
            &d.path().join("state"),
            &d.path().join("mem"),
            true,
            notify,
        )
        .expect_err("a broken snapshot was restored");
        // Refused before the devices were built: no console file.
        assert!(!console.exists(), "something was started for: {err}");
        chain(&err)
    };
    let half = &state[..state.len() / 2];
    assert!(try_restore(half, None).contains("truncated"));
    let mut corrupt = state.clone();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0x40;
    assert!(try_restore(&corrupt, None).contains("checksum does not match"));
    let mut magic = state.clone();
    magic[0] = b'X';
    assert!(try_restore(&magic, None).contains("magic number"));
    let mut version = state.clone();
    version[8] = 9;
    assert!(try_restore(&version, None).contains("format version 9"));
    let err = try_restore(&state, Some((32 << 20) - 4096));
    assert!(err.contains("33550336 bytes"), "{err}");
    assert!(err.contains("33554432 bytes"), "{err}");
    assert!(try_restore(&state, Some(64 << 20)).contains("67108864 bytes"));
}

use vessel_testkit::error_chain as chain;

/// The guest paused while its vCPU is in the middle of printing (no delay
/// between lines), six times over: the `out` the serial port already saw
/// must be completed before the snapshot, or the restored guest prints a
/// character twice. (On hosts where `out` takes KVM's fast path the guest
/// `rip` is still on the `out` when KVM exits to the VMM, and this test
/// fails without `Vcpu::complete_pending_io`; on this nested PVM host KVM's
/// instruction emulator advances `rip` before the exit, so here it checks
/// the sequence only.)
#[test]
fn a_guest_paused_mid_output_repeats_and_loses_nothing() {
    require_kvm();
    let dir = tempfile::tempdir().expect("tempdir");
    let guest = build_guest("counter_fast", dir.path());
    let mut printed = String::new();
    let (config, buf) = console_config(&guest);
    printed.push_str(&snapshot_counter(&config, &buf, dir.path()));
    // Snapshot, restore, run on, snapshot again: five pauses mid-output.
    for _ in 0..5 {
        let (vm, out) = restore(dir.path(), true);
        wait_lines(&out, 50);
        vm.pause();
        vm.snapshot(&dir.path().join("state"), &dir.path().join("mem"))
            .expect("snapshot");
        printed.push_str(&text(&out));
        vm.stop();
        assert_counts(&printed);
    }
    let (vm, out) = restore(dir.path(), true);
    wait_lines(&out, 5);
    vm.stop();
    assert!(assert_counts(&format!("{printed}{}", text(&out))) > 250);
}
