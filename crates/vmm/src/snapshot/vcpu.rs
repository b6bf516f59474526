//! A vCPU's state out of KVM and back in. The order of the calls follows
//! KVM's documented constraints: KVM_GET_MP_STATE first (it may accept
//! pending APIC events, changing the rest), KVM_GET_VCPU_EVENTS last;
//! on restore CPUID first (MSR validity depends on it), then MP state,
//! registers, FPU/XSAVE, LAPIC, MSRs and the pending events last.

use kvm_bindings::{kvm_fpu, kvm_msr_entry, CpuId, Msrs, KVM_MAX_MSR_ENTRIES};
use kvm_ioctls::{Cap, VcpuFd};

use super::raw::Raw;
use super::state::{FpuState, VcpuState};
use crate::arch::x86_64::cpuid::MAX_CPUID_ENTRIES;
use crate::vm::Vm;

/// Errors saving or restoring a vCPU.
#[derive(Debug, thiserror::Error)]
pub enum VcpuStateError {
    /// A KVM call failed.
    #[error("Cannot {what}")]
    Kvm {
        /// What was being done.
        what: &'static str,
        /// The cause.
        #[source]
        source: kvm_ioctls::Error,
    },
    /// KVM refused one of the saved MSRs.
    #[error("KVM refused MSR {index:#x} (value {data:#x})")]
    Msr {
        /// The MSR.
        index: u32,
        /// Its saved value.
        data: u64,
    },
    /// A list longer than KVM's structures take.
    #[error("{0} does not fit KVM's structure")]
    TooMany(&'static str),
    /// The vCPU's thread ended before it could save its state.
    #[error("The vCPU's thread has ended")]
    Gone,
}

fn kvm(what: &'static str) -> impl FnOnce(kvm_ioctls::Error) -> VcpuStateError {
    move |source| VcpuStateError::Kvm { what, source }
}

/// What saving a vCPU needs to know about KVM, found once when the VM is
/// built (the threads that save run under seccomp filters that allow no
/// `/dev/kvm` call).
#[derive(Debug, Clone, Default)]
pub struct SaveContext {
    /// KVM_GET_MSR_INDEX_LIST.
    pub msr_indices: Vec<u32>,
    /// KVM_CAP_XSAVE.
    pub xsave: bool,
    /// KVM_CAP_XCRS.
    pub xcrs: bool,
    /// KVM_CAP_DEBUGREGS.
    pub debugregs: bool,
    /// KVM_CAP_GET_TSC_KHZ.
    pub tsc_khz: bool,
    /// Whether the VM has an in-kernel irqchip (and so LAPICs).
    pub irqchip: bool,
}

impl SaveContext {
    /// Asks KVM.
    pub fn probe(vm: &Vm) -> Result<Self, VcpuStateError> {
        let kvm_fd = vm.kvm();
        let msr_indices = kvm_fd
            .get_msr_index_list()
            .map_err(kvm("read KVM's MSR list"))?
            .as_slice()
            .to_vec();
        Ok(SaveContext {
            msr_indices,
            xsave: kvm_fd.check_extension(Cap::Xsave),
            xcrs: kvm_fd.check_extension(Cap::Xcrs),
            debugregs: kvm_fd.check_extension(Cap::Debugregs),
            tsc_khz: kvm_fd.check_extension(Cap::GetTscKhz),
            irqchip: vm.has_irqchip(),
        })
    }
}

fn fpu_state(f: &kvm_fpu) -> FpuState {
    FpuState {
        fpr: f.fpr,
        fcw: f.fcw,
        fsw: f.fsw,
        ftwx: f.ftwx,
        last_opcode: f.last_opcode,
        last_ip: f.last_ip,
        last_dp: f.last_dp,
        xmm: f.xmm,
        mxcsr: f.mxcsr,
    }
}

fn kvm_fpu_of(f: &FpuState) -> kvm_fpu {
    kvm_fpu {
        fpr: f.fpr,
        fcw: f.fcw,
        fsw: f.fsw,
        ftwx: f.ftwx,
        last_opcode: f.last_opcode,
        last_ip: f.last_ip,
        last_dp: f.last_dp,
        xmm: f.xmm,
        mxcsr: f.mxcsr,
        ..Default::default()
    }
}

/// Reads every MSR of `indices` the vCPU lets userspace read. KVM's list
/// includes MSRs a given CPU model does not have; KVM_GET_MSRS stops at
/// the first one it cannot read, which is skipped.
fn read_msrs(fd: &VcpuFd, indices: &[u32]) -> Result<Vec<Raw<kvm_msr_entry>>, VcpuStateError> {
    let mut out = Vec::with_capacity(indices.len());
    let mut rest = indices;
    while !rest.is_empty() {
        let chunk = &rest[..rest.len().min(KVM_MAX_MSR_ENTRIES)];
        let entries: Vec<_> = chunk
            .iter()
            .map(|&index| kvm_msr_entry {
                index,
                ..Default::default()
            })
            .collect();
        let mut msrs =
            Msrs::from_entries(&entries).map_err(|_| VcpuStateError::TooMany("The MSR list"))?;
        let read = fd.get_msrs(&mut msrs).map_err(kvm("read the MSRs"))?;
        out.extend(
            msrs.as_slice()[..read.min(chunk.len())]
                .iter()
                .map(|e| Raw(*e)),
        );
        // Entry `read` (if any) is unreadable: skip it.
        rest = &rest[(read + 1).min(rest.len())..];
    }
    Ok(out)
}

/// `get()` when KVM has what it reads.
fn optional<T>(
    wanted: bool,
    what: &'static str,
    get: impl FnOnce() -> Result<T, kvm_ioctls::Error>,
) -> Result<Option<T>, VcpuStateError> {
    wanted.then(get).transpose().map_err(kvm(what))
}

/// Saves the vCPU behind `fd`. Call on a paused vCPU whose pending I/O has
/// been completed (see [`crate::vcpu::Vcpu::run_loop`]).
pub fn save(fd: &VcpuFd, ctx: &SaveContext) -> Result<VcpuState, VcpuStateError> {
    let mp_state = fd.get_mp_state().map_err(kvm("read the MP state"))?;
    let regs = fd.get_regs().map_err(kvm("read the registers"))?;
    let sregs = fd.get_sregs().map_err(kvm("read the special registers"))?;
    let fpu = fd.get_fpu().map_err(kvm("read the FPU state"))?;
    let xsave = optional(ctx.xsave, "read the XSAVE area", || fd.get_xsave())?.map(Raw);
    let xcrs = optional(ctx.xcrs, "read the XCRs", || fd.get_xcrs())?.map(Raw);
    let debugregs = optional(ctx.debugregs, "read the debug registers", || {
        fd.get_debug_regs()
    })?
    .map(Raw);
    let lapic = optional(ctx.irqchip, "read the local APIC", || fd.get_lapic())?.map(Raw);
    let tsc_khz = optional(ctx.tsc_khz, "read the TSC frequency", || fd.get_tsc_khz())?;
    let cpuid = fd
        .get_cpuid2(MAX_CPUID_ENTRIES)
        .map_err(kvm("read the CPUID"))?
        .as_slice()
        .iter()
        .map(|e| Raw(*e))
        .collect();
    let msrs = read_msrs(fd, &ctx.msr_indices)?;
    let vcpu_events = fd
        .get_vcpu_events()
        .map_err(kvm("read the pending events"))?;
    Ok(VcpuState {
        regs: Raw(regs),
        sregs: Raw(sregs),
        fpu: fpu_state(&fpu),
        xsave,
        xcrs,
        debugregs,
        lapic,
        msrs,
        mp_state: Raw(mp_state),
        vcpu_events: Raw(vcpu_events),
        cpuid,
        tsc_khz,
    })
}

fn write_msrs(fd: &VcpuFd, msrs: &[Raw<kvm_msr_entry>]) -> Result<(), VcpuStateError> {
    for chunk in msrs.chunks(KVM_MAX_MSR_ENTRIES) {
        let entries: Vec<_> = chunk.iter().map(|e| e.0).collect();
        let kvm_msrs =
            Msrs::from_entries(&entries).map_err(|_| VcpuStateError::TooMany("The MSR list"))?;
        let written = fd.set_msrs(&kvm_msrs).map_err(kvm("set the MSRs"))?;
        if let Some(refused) = entries.get(written) {
            return Err(VcpuStateError::Msr {
                index: refused.index,
                data: refused.data,
            });
        }
    }
    Ok(())
}

/// Puts `state` into the fresh vCPU behind `fd`.
pub fn restore(fd: &VcpuFd, state: &VcpuState) -> Result<(), VcpuStateError> {
    let entries: Vec<_> = state.cpuid.iter().map(|e| e.0).collect();
    let cpuid = CpuId::from_entries(&entries).map_err(|_| VcpuStateError::TooMany("The CPUID"))?;
    fd.set_cpuid2(&cpuid).map_err(kvm("set the CPUID"))?;
    if let Some(khz) = state.tsc_khz {
        // Only when it differs: setting it needs KVM_CAP_TSC_CONTROL.
        if fd.get_tsc_khz().ok() != Some(khz) {
            fd.set_tsc_khz(khz).map_err(kvm("set the TSC frequency"))?;
        }
    }
    fd.set_mp_state(state.mp_state.0)
        .map_err(kvm("set the MP state"))?;
    fd.set_regs(&state.regs).map_err(kvm("set the registers"))?;
    fd.set_sregs(&state.sregs)
        .map_err(kvm("set the special registers"))?;
    fd.set_fpu(&kvm_fpu_of(&state.fpu))
        .map_err(kvm("set the FPU state"))?;
    if let Some(xsave) = &state.xsave {
        // SAFETY: vessel enables no dynamically-enabled XSTATE feature
        // (AMX) for its guests, so the legacy 4 KiB kvm_xsave is the whole
        // area and KVM reads no further than the structure.
        unsafe { fd.set_xsave(xsave) }.map_err(kvm("set the XSAVE area"))?;
    }
    if let Some(xcrs) = &state.xcrs {
        fd.set_xcrs(xcrs).map_err(kvm("set the XCRs"))?;
    }
    if let Some(debugregs) = &state.debugregs {
        fd.set_debug_regs(debugregs)
            .map_err(kvm("set the debug registers"))?;
    }
    if let Some(lapic) = &state.lapic {
        fd.set_lapic(lapic).map_err(kvm("set the local APIC"))?;
    }
    write_msrs(fd, &state.msrs)?;
    fd.set_vcpu_events(&state.vcpu_events)
        .map_err(kvm("set the pending events"))?;
    Ok(())
}
