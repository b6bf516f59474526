//! Snapshots of a VM with virtio devices: the guest `virtio_blk_loop.c`
//! writes and reads disk sectors in a loop and prints a counter; it is
//! paused and snapshotted mid-run, its VM (device threads, disk image
//! handle, vsock socket) dropped, and a VM restored from the files goes on
//! counting without a gap or a repeat, its disk I/O working, and the host
//! finds every slot's last pattern in the image. The VM also has an
//! entropy and a vsock device the guest never starts (their transports
//! are restored un-activated). Broken device states and a missing or
//! resized disk are refused before the console is opened. Cross-process
//! restore through the `vessel` binary: crates/cli/tests/vm_snapshot.rs.
//! Fails, never skips, without /dev/kvm.

mod common;

use std::path::{Path, PathBuf};
use std::sync::mpsc::channel;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{build_c_guest, captured, require_kvm, text};
use vessel_vmm::builder::Notify;
use vessel_vmm::config::devices::{CacheType, DriveConfig, EntropyConfig, IoEngine, VsockConfig};
use vessel_vmm::snapshot::file;
use vessel_vmm::snapshot::load;
use vessel_vmm::snapshot::state::{MicrovmState, MmioDeviceState};
use vessel_vmm::{start_vm, ConsoleOutput, RunningVm, VmConfig};

const READY: &str = "disk loop ready\n";
/// A console captured in memory.
type Console = Arc<Mutex<Vec<u8>>>;
const SLOTS: u64 = 32;
const SECTOR: usize = 512;
/// Only a hung VM ever waits this long.
const PATIENCE: Duration = Duration::from_secs(180);

fn notify() -> Notify {
    let (tx, _rx) = channel();
    let tx = Mutex::new(tx);
    Arc::new(move |e| {
        let _ = tx.lock().map(|t| t.send(e));
    })
}

/// What the guest writes to its slot in iteration `i`.
fn pattern(i: u64) -> Vec<u8> {
    let mut p: Vec<u8> = (0..SECTOR as u64).map(|k| (i + k) as u8).collect();
    let label = format!("count {i}\0");
    p[..label.len()].copy_from_slice(label.as_bytes());
    p
}

/// The counts the guest printed (complete lines), each checked to be
/// `<n> ok` with n = 0, 1, 2, … and nothing missing or twice.
fn assert_counts(console: &str) -> u64 {
    let body = console
        .strip_prefix(READY)
        .unwrap_or_else(|| panic!("no banner: {console:?}"));
    let complete = &body[..body.rfind('\n').map_or(0, |i| i + 1)];
    for (i, line) in complete.lines().enumerate() {
        assert_eq!(line, format!("{i} ok"), "line {i} of {console:?}");
    }
    complete.lines().count() as u64
}

fn wait_lines(buf: &Console, lines: usize) {
    let start = Instant::now();
    while text(buf).matches('\n').count() < lines {
        assert!(start.elapsed() < PATIENCE, "guest stalled: {:?}", text(buf));
        std::thread::sleep(Duration::from_millis(5));
    }
}

struct Setup {
    dir: tempfile::TempDir,
    image: PathBuf,
}

impl Setup {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let image = dir.path().join("disk.img");
        std::fs::write(&image, vec![0u8; 64 * SECTOR]).expect("image");
        Setup { dir, image }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Boots the loop with a disk, an entropy device and a vsock device,
    /// lets it print `lines` lines, snapshots it to `state`/`mem` and
    /// drops the VM; what it printed.
    fn boot_and_snapshot(&self, lines: usize) -> String {
        let guest = build_c_guest("virtio_blk_loop", self.dir.path());
        let (mut config, buf) = captured(&guest);
        config.devices.drives.push(DriveConfig {
            drive_id: "data".into(),
            path_on_host: Some(self.image.clone()),
            is_root_device: false,
            partuuid: None,
            is_read_only: false,
            cache_type: CacheType::Writeback,
            io_engine: IoEngine::Sync,
            rate_limiter: None,
            socket: None,
        });
        config.devices.entropy = Some(EntropyConfig::default());
        config.devices.vsock = Some(VsockConfig {
            vsock_id: None,
            guest_cid: 3,
            uds_path: self.path("v.sock"),
        });
        let vm = start_vm(&config, notify()).expect("boot");
        wait_lines(&buf, lines);
        snapshot_and_drop(vm, &buf, self.dir.path())
    }

    fn restore(&self, resume: bool) -> Result<(RunningVm, Console), String> {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let mut config = VmConfig::new("");
        config.console = ConsoleOutput::Buffer(buf.clone());
        load::restore(
            &config,
            &self.path("state"),
            &self.path("mem"),
            resume,
            notify(),
        )
        .map(|vm| (vm, buf))
        .map_err(|e| chain(&e))
    }

    /// Each slot holds the pattern of the last count written to it, for
    /// every count the guest printed (`printed` complete lines); the slot
    /// the next count may already have overwritten is skipped.
    fn assert_image(&self, printed: u64) {
        let img = std::fs::read(&self.image).expect("image");
        assert_eq!(img.len(), 64 * SECTOR, "the image keeps its size");
        assert!(img[..SECTOR].iter().all(|&b| b == 0), "sector 0 untouched");
        for slot in 0..SLOTS.min(printed) {
            if slot == printed % SLOTS {
                continue;
            }
            let last = (0..printed)
                .rev()
                .find(|i| i % SLOTS == slot)
                .expect("a count");
            let at = (1 + slot as usize) * SECTOR;
            assert_eq!(
                &img[at..at + SECTOR],
                &pattern(last)[..],
                "slot {slot} should hold count {last}"
            );
        }
    }
}

/// Pauses, snapshots to `dir/state` and `dir/mem`, checks nothing was
/// printed meanwhile, drops the VM; what it printed.
fn snapshot_and_drop(vm: RunningVm, buf: &Console, dir: &Path) -> String {
    vm.pause();
    let before = text(buf);
    vm.snapshot(&dir.join("state"), &dir.join("mem"))
        .expect("snapshot");
    assert_eq!(text(buf), before, "the guest ran during the snapshot");
    vm.stop();
    before
}

use vessel_testkit::error_chain as chain;

#[test]
fn a_guest_doing_disk_io_goes_on_after_restore_without_gap_or_repeat() {
    require_kvm();
    let s = Setup::new();
    let mut printed = s.boot_and_snapshot(6);
    let counted = assert_counts(&printed);
    assert!(counted >= 5, "{printed}");
    // Snapshot, restore, run on, snapshot again: the disk's queue is
    // mid-use at each pause (the loop never stops submitting).
    for _ in 0..3 {
        let (vm, out) = s.restore(true).expect("restore");
        wait_lines(&out, 8);
        printed.push_str(&snapshot_and_drop(vm, &out, s.dir.path()));
        assert_counts(&printed);
    }
    // The snapshot's own vsock socket was removed with its VM; the
    // restored device bound it again.
    let (vm, out) = s.restore(true).expect("restore");
    assert!(s.path("v.sock").exists(), "vsock uds_path bound again");
    wait_lines(&out, 8);
    vm.stop();
    let total = assert_counts(&format!("{printed}{}", text(&out)));
    assert!(total >= counted + 3 * 7 + 7, "{total} after {counted}");
    s.assert_image(total);
}

#[test]
fn a_paused_restore_runs_nothing_until_resumed() {
    require_kvm();
    let s = Setup::new();
    let before = s.boot_and_snapshot(3);
    let image = std::fs::read(&s.image).expect("image");
    let (vm, out) = s.restore(false).expect("restore");
    assert!(vm.is_paused());
    // The device threads wait too: nothing printed, nothing written.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(text(&out), "");
    assert!(std::fs::read(&s.image).expect("image") == image);
    vm.resume();
    wait_lines(&out, 4);
    vm.stop();
    let total = assert_counts(&format!("{before}{}", text(&out)));
    s.assert_image(total);
}

/// Writes `state` (decoded, changed by `change`) as `state` in `dir`,
/// sealed with a valid checksum, so only the restore's checks can refuse.
fn rewrite(s: &Setup, good: &[u8], change: impl FnOnce(&mut MicrovmState)) {
    let mut state = file::decode(good).expect("decode");
    change(&mut state);
    std::fs::write(s.path("state"), file::encode(&state).expect("encode")).expect("write");
}

fn refused(s: &Setup) -> String {
    match s.restore(true) {
        Ok(_) => panic!("a broken snapshot was restored"),
        Err(e) => e,
    }
}

#[test]
fn broken_device_states_and_disks_are_refused_by_name() {
    require_kvm();
    let s = Setup::new();
    s.boot_and_snapshot(3);
    let good = std::fs::read(s.path("state")).expect("state");

    type Change = Box<dyn FnOnce(&mut MicrovmState)>;
    let cases: Vec<(Change, &[&str])> = vec![
        (
            Box::new(|m| m.devices.mmio[0].transport.queues[0].desc_table = 1 << 40),
            &["block data", "queues[0].desc_table", "outside guest memory"],
        ),
        (
            Box::new(|m| m.devices.mmio[0].transport.queues[0].used_ring += 2),
            &["queues[0].used_ring", "aligned"],
        ),
        (
            Box::new(|m| m.devices.mmio[0].transport.queues[0].size = 6),
            &["queues[0].size", "power of two"],
        ),
        (
            Box::new(|m| m.devices.mmio[0].transport.queues[0].size = 512),
            &["queues[0].size", "512"],
        ),
        (
            Box::new(|m| {
                let q = &mut m.devices.mmio[0].transport.queues[0];
                q.next_used = q.next_used.wrapping_add(3);
            }),
            &["queues[0].next_used", "used ring"],
        ),
        (
            Box::new(|m| {
                let q = &mut m.devices.mmio[0].transport.queues[0];
                q.next_avail = q.next_avail.wrapping_add(1000);
            }),
            &["queues[0].next_avail"],
        ),
        (
            Box::new(|m| m.devices.mmio[0].transport.driver_features |= 1 << 40),
            &["driver_features", "does not offer"],
        ),
        (
            Box::new(|m| m.devices.mmio[0].transport.device_type = 4),
            &["device_type"],
        ),
        (
            Box::new(|m| {
                m.devices.mmio[0].transport.config.pop();
            }),
            &["`config`", "59 bytes"],
        ),
        (
            Box::new(|m| m.devices.mmio[0].transport.queues.push(Default::default())),
            &["`queues`", "2 entries"],
        ),
        (
            Box::new(|m| m.devices.mmio[2].base += 0x10_0000),
            &["entropy", "slot"],
        ),
        (
            Box::new(|m| m.devices.mmio[1].irq = 9),
            &["vsock", "IRQ 9", "slot"],
        ),
        (
            Box::new(|m| m.devices.mmio[2].transport.interrupt_status = 4),
            &["interrupt_status"],
        ),
        (
            Box::new(|m| m.devices.mmio[2].transport.status = 0x40),
            &["`status`"],
        ),
        (
            Box::new(|m| m.devices.mmio.swap(0, 2)),
            &["entropy", "slot"],
        ),
    ];
    for (change, words) in cases {
        rewrite(&s, &good, change);
        let err = refused(&s);
        for w in words {
            assert!(err.contains(w), "{w:?} not in {err}");
        }
    }
    // A state that does not validate is refused before anything is built.
    rewrite(&s, &good, |m| {
        if let MmioDeviceState::Vsock(v) = &mut m.devices.mmio[1].device {
            v.guest_cid = 2;
        }
    });
    let err = refused(&s);
    assert!(err.contains("`guest_cid`"), "{err}");

    // The disk: resized, then missing.
    std::fs::write(s.path("state"), &good).expect("state");
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&s.image)
        .expect("image");
    file.set_len(65 * SECTOR as u64).expect("grow");
    let err = refused(&s);
    assert!(
        err.contains("33280 bytes") && err.contains("32768 bytes"),
        "{err}"
    );
    assert!(err.contains("disk.img"), "{err}");
    std::fs::remove_file(&s.image).expect("remove");
    let err = refused(&s);
    assert!(
        err.contains("disk.img") && err.contains("\"data\""),
        "{err}"
    );

    // A leftover vsock socket (a killed VMM's) is named.
    std::fs::write(&s.image, vec![0u8; 64 * SECTOR]).expect("image");
    std::fs::write(s.path("v.sock"), "").expect("leftover");
    let err = refused(&s);
    assert!(
        err.contains("v.sock") && err.contains("already exists"),
        "{err}"
    );
    std::fs::remove_file(s.path("v.sock")).expect("remove");
    let (vm, out) = s.restore(true).expect("the untouched snapshot restores");
    wait_lines(&out, 1);
    vm.stop();
}
