//! Seccomp filters for the VMM's own threads, as Firecracker has them: one
//! allow-list per kind of thread (the VMM/event thread, the API thread, the
//! vCPU threads), built with the rust-vmm `seccompiler` crate and installed
//! by each thread itself before it enters its loop. A thread that makes a
//! system call outside its list gets `SIGSYS`; the handler installed here
//! names the call on stderr and ends the process (exit code 1).
//!
//! The lists are what each thread was measured to need (strace of the test
//! guests, the API tests and a Linux boot), plus what Rust's runtime needs
//! to allocate, park and exit. ioctl is limited by request number: a vCPU
//! thread may only `KVM_RUN` (and read registers for an error report, and
//! its whole state for a snapshot, and raise a device's interrupt line
//! with `KVM_IRQ_LINE` where KVM has no irqfd); the VMM thread may only read the VM's
//! irqchips, PIT and clock (snapshots) and raise a balloon interrupt line
//! (`KVM_IRQ_LINE`, without irqfd); the API thread makes no ioctl.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// Errors building or installing a filter.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// The rules do not compile (a bug in this module).
    #[error("Cannot build the seccomp filter of the {0} thread")]
    Build(&'static str, #[source] seccompiler::BackendError),
    /// The kernel refused the filter.
    #[error("Cannot install the seccomp filter of the {0} thread")]
    Install(&'static str, #[source] seccompiler::Error),
    /// The SIGSYS handler cannot be installed.
    #[error("Cannot install the SIGSYS handler")]
    Handler(#[source] vmm_sys_util::errno::Error),
}

/// The kinds of VMM threads, each with its own filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadKind {
    /// The thread that owns the VM once it runs: events, API requests
    /// handed over by the API thread, stopping vCPUs, the log. The console
    /// input thread shares this list.
    Vmm,
    /// The thread serving the API socket.
    Api,
    /// A vCPU thread.
    Vcpu,
    /// A virtio device thread: its event loop and its image, tap or
    /// socket I/O.
    Device,
}

impl ThreadKind {
    fn name(self) -> &'static str {
        match self {
            ThreadKind::Vmm => "VMM",
            ThreadKind::Api => "API",
            ThreadKind::Vcpu => "vCPU",
            ThreadKind::Device => "virtio device",
        }
    }
}

const KVMIO: u64 = 0xae;
const fn io(nr: u64) -> u64 {
    (KVMIO << 8) | nr
}
const fn ior(nr: u64, size: usize) -> u64 {
    (2 << 30) | ((size as u64) << 16) | (KVMIO << 8) | nr
}
const fn iow(nr: u64, size: usize) -> u64 {
    (1 << 30) | ((size as u64) << 16) | (KVMIO << 8) | nr
}
/// `KVM_IRQ_LINE` (a device's interrupt where KVM has no irqfd).
const KVM_IRQ_LINE: u64 = iow(0x61, std::mem::size_of::<kvm_bindings::kvm_irq_level>());
/// `TUNSETOFFLOAD`: virtio-net tells its tap which offloads the driver
/// accepted, on the device thread when the driver is ready.
const TUNSETOFFLOAD: u64 = libc::TUNSETOFFLOAD;
const fn iowr(nr: u64, size: usize) -> u64 {
    (3 << 30) | ((size as u64) << 16) | (KVMIO << 8) | nr
}
use std::mem::size_of;
/// `KVM_RUN`.
const KVM_RUN: u64 = io(0x80);
/// `KVM_GET_REGS` (the guest `rip` in an error report, and snapshots).
const KVM_GET_REGS: u64 = ior(0x81, size_of::<kvm_bindings::kvm_regs>());

/// What a parked vCPU thread reads of its vCPU for a snapshot
/// (crate::snapshot::vcpu::save).
const VCPU_SNAPSHOT_IOCTLS: &[u64] = &[
    ior(0x83, size_of::<kvm_bindings::kvm_sregs>()), // KVM_GET_SREGS
    iowr(0x88, size_of::<kvm_bindings::kvm_msrs>()), // KVM_GET_MSRS
    ior(0x8c, size_of::<kvm_bindings::kvm_fpu>()),   // KVM_GET_FPU
    ior(0x8e, size_of::<kvm_bindings::kvm_lapic_state>()), // KVM_GET_LAPIC
    iowr(0x91, size_of::<kvm_bindings::kvm_cpuid2>()), // KVM_GET_CPUID2
    ior(0x98, size_of::<kvm_bindings::kvm_mp_state>()), // KVM_GET_MP_STATE
    ior(0x9f, size_of::<kvm_bindings::kvm_vcpu_events>()), // KVM_GET_VCPU_EVENTS
    ior(0xa1, size_of::<kvm_bindings::kvm_debugregs>()), // KVM_GET_DEBUGREGS
    io(0xa3),                                        // KVM_GET_TSC_KHZ
    ior(0xa4, size_of::<kvm_bindings::kvm_xsave>()), // KVM_GET_XSAVE
    ior(0xa6, size_of::<kvm_bindings::kvm_xcrs>()),  // KVM_GET_XCRS
];

/// What the VMM thread reads of the VM for a snapshot
/// (crate::snapshot::vm::save).
const VM_SNAPSHOT_IOCTLS: &[u64] = &[
    iowr(0x62, size_of::<kvm_bindings::kvm_irqchip>()), // KVM_GET_IRQCHIP
    ior(0x7c, size_of::<kvm_bindings::kvm_clock_data>()), // KVM_GET_CLOCK
    ior(0x9f, size_of::<kvm_bindings::kvm_pit_state2>()), // KVM_GET_PIT2
];

/// What every Rust thread needs: memory, locks and channels, signals
/// (the kick and SIGSYS handlers return through rt_sigreturn), time, exit.
const COMMON: &[i64] = &[
    libc::SYS_brk,
    libc::SYS_mmap,
    libc::SYS_munmap,
    libc::SYS_mremap,
    libc::SYS_mprotect,
    libc::SYS_madvise,
    libc::SYS_futex,
    libc::SYS_sched_yield,
    libc::SYS_rt_sigreturn,
    libc::SYS_rt_sigprocmask,
    libc::SYS_sigaltstack,
    libc::SYS_clock_gettime,
    libc::SYS_clock_nanosleep,
    libc::SYS_nanosleep,
    libc::SYS_gettid,
    libc::SYS_getpid,
    libc::SYS_getrandom,
    libc::SYS_read,
    libc::SYS_write,
    libc::SYS_writev,
    libc::SYS_close,
    // Debug builds check a descriptor with F_GETFD before closing it.
    libc::SYS_fcntl,
    libc::SYS_exit,
    libc::SYS_exit_group,
    libc::SYS_rseq,
];

/// The VMM thread after boot: stop and kick vCPUs, join threads, write the
/// log and the console, poll the console input, remove the API socket.
const VMM: &[i64] = &[
    libc::SYS_tgkill,
    libc::SYS_poll,
    libc::SYS_ppoll,
    // Stopping the API thread: a byte on its shutdown socket.
    libc::SYS_sendto,
    libc::SYS_dup,
    libc::SYS_fstat,
    libc::SYS_statx,
    libc::SYS_unlink,
    libc::SYS_lseek,
    // The vessel-signals thread: sigwait for SIGTERM/SIGINT.
    libc::SYS_rt_sigtimedwait,
    // PUT /snapshot/create: temporary files written, synced and renamed.
    libc::SYS_openat,
    libc::SYS_ftruncate,
    libc::SYS_fsync,
    libc::SYS_fdatasync,
    libc::SYS_rename,
    libc::SYS_renameat,
    libc::SYS_renameat2,
    libc::SYS_unlinkat,
    libc::SYS_newfstatat,
    // The asynchronous teardown (crate::teardown): its pipes, and the
    // helper's close_range (it inherits this filter). clone is allowed
    // with the helper's flags only (see `filter`).
    libc::SYS_pipe2,
    libc::SYS_close_range,
];

/// The API thread: accept, poll, read and write connections.
const API: &[i64] = &[
    libc::SYS_accept4,
    libc::SYS_poll,
    libc::SYS_ppoll,
    libc::SYS_recvfrom,
    libc::SYS_sendto,
    libc::SYS_setsockopt,
    libc::SYS_getsockopt,
    libc::SYS_shutdown,
];

/// vCPU threads: besides the ioctls below, nothing but the console and
/// eventfd writes of the devices they run.
const VCPU: &[i64] = &[libc::SYS_fstat, libc::SYS_lseek];

/// Virtio device threads: the event loop, disk image I/O (positioned
/// reads and writes, syncs, hole punching), entropy, the vsock Unix
/// sockets (guest connections open new ones), the tap, rate-limiter
/// timers, the balloon's madvise (in the common list).
const DEVICE: &[i64] = &[
    libc::SYS_epoll_wait,
    libc::SYS_epoll_pwait,
    libc::SYS_epoll_ctl,
    libc::SYS_pread64,
    libc::SYS_pwrite64,
    libc::SYS_preadv,
    libc::SYS_pwritev,
    libc::SYS_readv,
    libc::SYS_fsync,
    libc::SYS_fdatasync,
    libc::SYS_fallocate,
    libc::SYS_fstat,
    libc::SYS_lseek,
    libc::SYS_socket,
    libc::SYS_connect,
    libc::SYS_accept4,
    libc::SYS_recvfrom,
    libc::SYS_sendto,
    libc::SYS_recvmsg,
    libc::SYS_sendmsg,
    libc::SYS_shutdown,
    libc::SYS_getsockopt,
    libc::SYS_timerfd_settime,
    libc::SYS_timerfd_gettime,
];

/// Builds the BPF program for `kind`.
pub fn filter(kind: ThreadKind) -> Result<BpfProgram, SeccompError> {
    let err = |e| SeccompError::Build(kind.name(), e);
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    let extra = match kind {
        ThreadKind::Vmm => VMM,
        ThreadKind::Api => API,
        ThreadKind::Vcpu => VCPU,
        ThreadKind::Device => DEVICE,
    };
    for &nr in COMMON.iter().chain(extra) {
        rules.insert(nr, Vec::new());
    }
    // glibc's free() reads /proc/sys/vm/overcommit_memory once per process,
    // on whichever thread first shrinks a thread arena's heap (a device
    // thread dropping a connection's buffer, say). So every thread may
    // open a file read-only as glibc does (O_RDONLY|O_CLOEXEC), and only
    // so where its list has no openat; Cloud Hypervisor does the same.
    if let std::collections::btree_map::Entry::Vacant(e) = rules.entry(libc::SYS_openat) {
        let flags = (libc::O_RDONLY | libc::O_CLOEXEC) as u64;
        let cond = SeccompCondition::new(2, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, flags)
            .map_err(err)?;
        e.insert(vec![SeccompRule::new(vec![cond]).map_err(err)?]);
    }
    if kind == ThreadKind::Vmm {
        // The teardown helper's clone (crate::teardown), with exactly its
        // flags: no thread, no other process shape.
        let flags = crate::teardown::HELPER_CLONE_FLAGS as u64;
        let cond = SeccompCondition::new(0, SeccompCmpArgLen::Qword, SeccompCmpOp::Eq, flags)
            .map_err(err)?;
        rules.insert(
            libc::SYS_clone,
            vec![SeccompRule::new(vec![cond]).map_err(err)?],
        );
    }
    let ioctls: Vec<u64> = match kind {
        // KVM_IRQ_LINE: without irqfd, the configuration interrupt of a
        // device the transport marks DEVICE_NEEDS_RESET on this thread's
        // MMIO exit (see docs/vmm.md, Seccomp).
        ThreadKind::Vcpu => [KVM_RUN, KVM_GET_REGS, KVM_IRQ_LINE]
            .iter()
            .chain(VCPU_SNAPSHOT_IOCTLS)
            .copied()
            .collect(),
        ThreadKind::Device => vec![KVM_IRQ_LINE, TUNSETOFFLOAD],
        // KVM_IRQ_LINE: the balloon's configuration interrupt after
        // `PATCH /balloon`, raised on this thread, where KVM has no irqfd.
        ThreadKind::Vmm => VM_SNAPSHOT_IOCTLS
            .iter()
            .chain(&[KVM_IRQ_LINE])
            .copied()
            .collect(),
        ThreadKind::Api => Vec::new(),
    };
    if !ioctls.is_empty() {
        let ioctl = ioctls
            .iter()
            .copied()
            .map(|req| {
                let cond =
                    SeccompCondition::new(1, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, req)?;
                SeccompRule::new(vec![cond])
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(err)?;
        rules.insert(libc::SYS_ioctl, ioctl);
    }
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Trap,
        SeccompAction::Allow,
        TargetArch::x86_64,
    )
    .map_err(err)?;
    filter.try_into().map_err(err)
}

/// Installs `kind`'s filter on the calling thread (and the SIGSYS handler
/// that reports a blocked call, once per process).
pub fn install(kind: ThreadKind) -> Result<(), SeccompError> {
    install_sigsys_handler()?;
    let program = filter(kind)?;
    seccompiler::apply_filter(&program).map_err(|e| SeccompError::Install(kind.name(), e))?;
    THREAD_KIND.with(|k| k.set(kind.name()));
    Ok(())
}

thread_local! {
    /// The filter this thread installed, for the SIGSYS report.
    static THREAD_KIND: std::cell::Cell<&'static str> = const { std::cell::Cell::new("VMM") };
}

fn install_sigsys_handler() -> Result<(), SeccompError> {
    static INSTALLED: OnceLock<Result<(), i32>> = OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            vmm_sys_util::signal::register_signal_handler(libc::SIGSYS, sigsys_handler)
                .map_err(|e| e.errno())
        })
        .map_err(|errno| SeccompError::Handler(vmm_sys_util::errno::Error::new(errno)))
}

/// Offset of `si_syscall` in a SIGSYS `siginfo_t` on x86_64: after
/// `si_signo`, `si_errno`, `si_code` (padded to 16) and `si_call_addr`.
const SI_SYSCALL_OFFSET: usize = 24;

extern "C" fn sigsys_handler(_: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    let nr = if info.is_null() {
        -1
    } else {
        let field = info
            .cast::<u8>()
            .wrapping_add(SI_SYSCALL_OFFSET)
            .cast::<i32>();
        // SAFETY: the kernel passes a valid siginfo_t for a SA_SIGINFO
        // handler; for SIGSYS, `field` (offset 24) is the int `si_syscall`.
        unsafe { std::ptr::read_unaligned(field) }
    };
    // No allocation in a signal handler: format into a stack buffer.
    let mut msg = [0u8; 160];
    let head = b"vessel: seccomp: blocked system call ";
    let kind = THREAD_KIND.with(std::cell::Cell::get).as_bytes();
    let tail = b" thread (run with --no-seccomp to confirm, and report it)\n";
    let mut len = 0;
    for &b in head {
        msg[len] = b;
        len += 1;
    }
    let mut digits = [0u8; 12];
    let mut n = nr.unsigned_abs();
    let mut d = 0;
    loop {
        digits[d] = b'0' + (n % 10) as u8;
        d += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if nr < 0 {
        msg[len] = b'-';
        len += 1;
    }
    for i in (0..d).rev() {
        msg[len] = digits[i];
        len += 1;
    }
    for &b in b" on the ".iter().chain(kind).chain(tail) {
        msg[len] = b;
        len += 1;
    }
    // SAFETY: write(2) is async-signal-safe; `msg[..len]` is initialised.
    unsafe { libc::write(2, msg.as_ptr().cast(), len) };
    // SAFETY: _exit(2) is async-signal-safe and ends the process.
    unsafe { libc::_exit(1) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_filter_builds() {
        for kind in [
            ThreadKind::Vmm,
            ThreadKind::Api,
            ThreadKind::Vcpu,
            ThreadKind::Device,
        ] {
            assert!(!filter(kind).expect("filter").is_empty());
        }
    }

    #[test]
    fn kvm_ioctl_numbers() {
        assert_eq!(KVM_RUN, 0xae80);
        assert_eq!(KVM_GET_REGS, 0x8090_ae81);
        assert_eq!(KVM_IRQ_LINE, 0x4008_ae61);
        // From <linux/kvm.h> (a C program printing them).
        let vcpu = [
            0x8138_ae83, // KVM_GET_SREGS
            0xc008_ae88, // KVM_GET_MSRS
            0x81a0_ae8c, // KVM_GET_FPU
            0x8400_ae8e, // KVM_GET_LAPIC
            0xc008_ae91, // KVM_GET_CPUID2
            0x8004_ae98, // KVM_GET_MP_STATE
            0x8040_ae9f, // KVM_GET_VCPU_EVENTS
            0x8080_aea1, // KVM_GET_DEBUGREGS
            0xaea3,      // KVM_GET_TSC_KHZ
            0x9000_aea4, // KVM_GET_XSAVE
            0x8188_aea6, // KVM_GET_XCRS
        ];
        assert_eq!(VCPU_SNAPSHOT_IOCTLS, vcpu);
        let vm = [
            0xc208_ae62, // KVM_GET_IRQCHIP
            0x8030_ae7c, // KVM_GET_CLOCK
            0x8070_ae9f, // KVM_GET_PIT2
        ];
        assert_eq!(VM_SNAPSHOT_IOCTLS, vm);
    }

    #[test]
    fn threads_may_read_what_glibc_reads_when_it_frees() {
        use std::io::Read;
        for kind in [ThreadKind::Api, ThreadKind::Vcpu, ThreadKind::Device] {
            let got = std::thread::spawn(move || {
                install(kind).expect("install");
                // File::open is openat(O_RDONLY|O_CLOEXEC), as glibc's.
                let mut f = std::fs::File::open("/proc/sys/vm/overcommit_memory")?;
                let mut buf = [0u8; 8];
                f.read(&mut buf)
            })
            .join()
            .expect("thread");
            assert!(got.expect("read under the filter") > 0, "{}", kind.name());
        }
    }

    #[test]
    fn a_thread_runs_under_its_filter() {
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            install(ThreadKind::Vcpu).expect("install");
            // SAFETY: gettid has no preconditions.
            let tid = unsafe { libc::gettid() };
            tid_tx.send(tid).expect("send");
            let _ = done_rx.recv();
        });
        let tid = tid_rx.recv().expect("tid");
        let status = std::fs::read_to_string(format!("/proc/self/task/{tid}/status"))
            .expect("thread status");
        done_tx.send(()).expect("release");
        thread.join().expect("thread");
        assert!(status.contains("Seccomp:\t2"), "{status}");
        // This thread has no filter.
        let own = std::fs::read_to_string("/proc/thread-self/status").expect("own status");
        assert!(own.contains("Seccomp:\t0"), "{own}");
    }
}
