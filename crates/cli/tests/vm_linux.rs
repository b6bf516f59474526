//! `vessel vm run` boots a real Linux kernel: Debian's cloud kernel, as an
//! ELF vmlinux through its PVH entry (scripts/guest-kernel.sh provides it,
//! outside the checkout). Fails, never skips, without /dev/kvm or the
//! kernel.
//!
//! The VM has 2 vCPUs. Debian's kernel is built without
//! `CONFIG_X86_MPPARSE`: it finds the second CPU only in vessel's ACPI MADT.
//!
//! How far the boot goes depends on the host:
//! - With hardware virtualization (a `vmx` or `svm` flag in /proc/cpuinfo)
//!   the kernel boots to the initramfs built here, whose /init prints a
//!   marker and powers off (ACPI S5); vessel must then exit 0 and log the
//!   power-off.
//! - Under nested PVM without those flags (the project's build machines),
//!   KVM's instruction emulator runs the kernel's CPL0 code and stops it on
//!   an instruction it cannot emulate, early in boot. The test then checks
//!   the milestones the kernel reaches: its banner, the memory map it
//!   prints from vessel's e820 table, vessel's ACPI tables and the 2 CPUs
//!   the MADT gives; it stops the VM once they are seen.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::{channel, RecvTimeoutError};
use std::time::{Duration, Instant};

use vessel_vmm::arch::x86_64::boot::{e820_map, E820_RAM};
use vessel_vmm::memory::create_guest_memory;

const VESSEL: &str = env!("CARGO_BIN_EXE_vessel");
/// Guest memory for the boot.
const MEMORY_MIB: u64 = 128;
/// vCPUs.
const CPUS: u8 = 2;
/// An overall limit that only a hung boot reaches (the milestones take
/// about 20 s under the emulator, a full boot well under a second).
const LIMIT: Duration = Duration::from_secs(240);
/// What the initramfs's /init prints.
const INIT_MARKER: &str = "vessel-init: hello from userspace";

fn kernel() -> PathBuf {
    let dir = std::env::var_os("VESSEL_KERNEL_DIR")
        .map_or_else(|| PathBuf::from("/var/cache/vessel/kernel"), PathBuf::from);
    let vmlinux = dir.join("vmlinux");
    assert!(
        vmlinux.is_file(),
        "{} is missing: run scripts/guest-kernel.sh (scripts/test.sh and scripts/setup.sh do)",
        vmlinux.display()
    );
    vmlinux
}

fn hardware_virtualization() -> bool {
    std::fs::read_to_string("/proc/cpuinfo").is_ok_and(|c| {
        c.lines()
            .filter(|l| l.starts_with("flags"))
            .any(|l| l.split_whitespace().any(|f| f == "vmx" || f == "svm"))
    })
}

fn tool(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?} ({e}); install binutils"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A static x86_64 /init that writes the marker to the console and powers
/// off (the kernel writes S5 to vessel's ACPI sleep control register, which
/// ends the microVM).
fn build_init(dir: &Path) -> PathBuf {
    let src = dir.join("init.s");
    std::fs::write(
        &src,
        format!(
            r#"
    .globl _start
_start:
    mov $1, %eax            # write(1, msg, len)
    mov $1, %edi
    lea msg(%rip), %rsi
    mov $len, %edx
    syscall
    mov $169, %eax          # reboot(MAGIC1, MAGIC2, LINUX_REBOOT_CMD_POWER_OFF)
    mov $0xfee1dead, %edi
    mov $672274793, %esi
    mov $0x4321fedc, %edx
    syscall
1:  jmp 1b
msg: .ascii "\n{INIT_MARKER}\n"
    .set len, . - msg
"#
        ),
    )
    .expect("write init.s");
    let obj = dir.join("init.o");
    let init = dir.join("init");
    tool(Command::new("as").arg("--64").arg("-o").arg(&obj).arg(&src));
    tool(
        Command::new("ld")
            .args(["-m", "elf_x86_64", "-static", "--build-id=none", "-o"])
            .arg(&init)
            .arg(&obj),
    );
    init
}

/// One newc cpio entry.
fn cpio_entry(out: &mut Vec<u8>, ino: u32, name: &str, mode: u32, rdev: (u32, u32), data: &[u8]) {
    let name_len = name.len() + 1;
    let header = format!(
        "070701{ino:08x}{mode:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{name_len:08x}{:08x}",
        0,
        0,
        1,
        0,
        data.len(),
        0,
        0,
        rdev.0,
        rdev.1,
        0
    );
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
    out.extend_from_slice(data);
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

/// An uncompressed initramfs (gunzip is slow under an emulator) with
/// /dev/console and /init.
fn build_initramfs(dir: &Path) -> PathBuf {
    let init = std::fs::read(build_init(dir)).expect("read init");
    let mut cpio = Vec::new();
    cpio_entry(&mut cpio, 1, "dev", 0o040755, (0, 0), b"");
    cpio_entry(&mut cpio, 2, "dev/console", 0o020600, (5, 1), b"");
    cpio_entry(&mut cpio, 3, "init", 0o100755, (0, 0), &init);
    cpio_entry(&mut cpio, 4, "TRAILER!!!", 0, (0, 0), b"");
    let path = dir.join("initramfs.cpio");
    std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(&cpio))
        .expect("write initramfs");
    path
}

/// The lines the kernel prints for vessel's memory map of `mib` MiB.
fn expected_e820_lines(mib: u64) -> Vec<String> {
    let mem = create_guest_memory(mib).expect("guest memory");
    e820_map(&mem)
        .iter()
        .map(|e| {
            let kind = if e.kind == E820_RAM {
                "usable"
            } else {
                "reserved"
            };
            format!(
                "BIOS-e820: [mem {:#018x}-{:#018x}] {kind}",
                e.addr,
                e.addr + e.size - 1
            )
        })
        .collect()
}

/// What the kernel prints from vessel's ACPI tables: each table it finds
/// (RSDP, then the XSDT and the FADT, DSDT and MADT behind it) and the
/// vCPUs the MADT lists.
fn expected_acpi_lines() -> Vec<String> {
    let mut lines: Vec<String> = ["RSDP", "XSDT", "FACP", "DSDT", "APIC"]
        .iter()
        .map(|t| format!("ACPI: {t} 0x"))
        .collect();
    lines.push(format!("smpboot: Allowing {CPUS} CPUs"));
    lines
}

#[test]
fn debian_cloud_kernel_boots_by_pvh_to_its_banner_memory_map_and_acpi_cpus() {
    assert!(
        Path::new("/dev/kvm").exists(),
        "/dev/kvm is missing: the Linux boot test needs KVM"
    );
    let kernel = kernel();
    let dir = tempfile::tempdir().expect("tempdir");
    let initramfs = build_initramfs(dir.path());
    let log = dir.path().join("vmm.log");
    let full_boot = hardware_virtualization();

    // earlyprintk: under the emulator the kernel stops before its console
    // driver starts, so the early console is what shows the milestones.
    let cmdline = "console=ttyS0 earlyprintk=ttyS0 reboot=k panic=-1 pci=off rdinit=/init";
    let mut child = Command::new(VESSEL)
        .args(["vm", "run", "--kernel"])
        .arg(&kernel)
        .arg("--initrd")
        .arg(&initramfs)
        .args(["--cmdline", cmdline, "--memory", &MEMORY_MIB.to_string()])
        .args(["--cpus", &CPUS.to_string()])
        .arg("--log")
        .arg(&log)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn vessel");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, lines) = channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });

    let mut want: Vec<String> = vec!["Linux version 6.".into()];
    want.extend(expected_e820_lines(MEMORY_MIB));
    want.extend(expected_acpi_lines());
    if full_boot {
        want.push(INIT_MARKER.into());
    }
    let mut console = Vec::new();
    let start = Instant::now();
    let all_seen = loop {
        if want
            .iter()
            .all(|w| console.iter().any(|l: &String| l.contains(w.as_str())))
        {
            break true;
        }
        let Some(left) = LIMIT.checked_sub(start.elapsed()) else {
            break false;
        };
        match lines.recv_timeout(left) {
            Ok(line) => console.push(line),
            Err(RecvTimeoutError::Timeout) => break false,
            // vessel exited (here: the emulator gave up) before every line.
            Err(RecvTimeoutError::Disconnected) => break false,
        }
    };

    let status = if full_boot {
        // /init powered off: vessel ends by itself, cleanly.
        let deadline = Instant::now() + LIMIT;
        loop {
            if let Some(s) = child.try_wait().expect("wait") {
                break Some(s);
            }
            if Instant::now() > deadline {
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    } else {
        None
    };
    // Stop the VM (it would otherwise run until the emulator gives up).
    let _ = child.kill();
    let _ = child.wait();
    drop(lines);
    let _ = reader.join();
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
    }
    let console = console.join("\n");
    assert!(
        all_seen,
        "missing from the console: {:?}\n--- console ---\n{console}\n--- stderr ---\n{stderr}",
        want.iter()
            .filter(|w| !console.contains(w.as_str()))
            .collect::<Vec<_>>()
    );
    if full_boot {
        let status = status.expect("vessel did not exit after /init powered off");
        assert_eq!(status.code(), Some(0), "{stderr}");
        let log = std::fs::read_to_string(&log).expect("the VMM log");
        assert!(log.contains("guest ended: power-off"), "{log}");
    }
    // The kernel saw the command line vessel wrote.
    assert!(
        console.contains(&format!("Command line: {cmdline}")),
        "{console}"
    );
}
