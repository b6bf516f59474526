//! Runs compiled programs on a given call the way the kernel does, without installing
//! them. `order` uses it to find the filters that would block the installation of the
//! next one; unit tests use it to check a profile's verdict for any call.
//!
//! Only the instructions seccompiler and the x32 guard emit are implemented; a program
//! with anything else (or a jump out of bounds) yields `None`.

use seccompiler::sock_filter;

/// The fields of `struct seccomp_data` that filters read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Call {
    pub(crate) nr: u32,
    pub(crate) arch: u32,
    pub(crate) args: [u64; 6],
}

/// AUDIT_ARCH_X86_64.
pub(crate) const X86_64: u32 = 0xc000_003e;

impl Call {
    /// A native call; missing arguments are 0.
    pub(crate) fn new(nr: u32, args: &[u64]) -> Self {
        let mut all = [0; 6];
        for (slot, arg) in all.iter_mut().zip(args) {
            *slot = *arg;
        }
        Call {
            nr,
            arch: X86_64,
            args: all,
        }
    }

    /// The 32-bit word at `offset` of `struct seccomp_data` (little endian).
    fn word(&self, offset: u32) -> Option<u32> {
        match offset {
            0 => Some(self.nr),
            4 => Some(self.arch),
            8..=15 => Some(0), // instruction_pointer: not known ahead of time
            16..=63 => {
                let arg = *self.args.get(usize::try_from((offset - 16) / 8).ok()?)?;
                // Low half at offset 8n + 16, high half 4 bytes later.
                let word = if offset & 4 == 0 { arg } else { arg >> 32 };
                u32::try_from(word & 0xffff_ffff).ok()
            }
            _ => None,
        }
    }
}

/// Runs one program on one call and returns its SECCOMP_RET_* value.
pub(crate) fn run(program: &[sock_filter], call: &Call) -> Option<u32> {
    let mut acc = 0u32;
    let mut pc = 0usize;
    loop {
        let ins = program.get(pc)?;
        pc += 1;
        let skip = |taken: bool| usize::from(if taken { ins.jt } else { ins.jf });
        match ins.code {
            0x20 => acc = call.word(ins.k)?, // BPF_LD | BPF_W | BPF_ABS
            0x54 => acc &= ins.k,            // BPF_ALU | BPF_AND | BPF_K
            0x05 => pc += usize::try_from(ins.k).ok()?, // BPF_JMP | BPF_JA
            0x15 => pc += skip(acc == ins.k), // BPF_JMP | BPF_JEQ | BPF_K
            0x25 => pc += skip(acc > ins.k), // BPF_JMP | BPF_JGT | BPF_K
            0x35 => pc += skip(acc >= ins.k), // BPF_JMP | BPF_JGE | BPF_K
            0x06 => return Some(ins.k),      // BPF_RET | BPF_K
            _ => return None,
        }
    }
}

/// The verdict of all filters of a profile, combined as the kernel does: the lowest
/// action (as a signed number, so KILL_PROCESS is lowest) wins, and among equal actions
/// the most recently installed filter's value.
#[cfg(test)]
pub(crate) fn verdict(profile: &crate::CompiledProfile, call: &Call) -> u32 {
    let action_only = |ret: u32| (ret & libc::SECCOMP_RET_ACTION_FULL) as i32;
    let mut verdict = libc::SECCOMP_RET_ALLOW;
    for filter in profile.filters.iter().rev() {
        let ret = run(&filter.program, call).expect("program must be runnable");
        if action_only(ret) < action_only(verdict) {
            verdict = ret;
        }
    }
    verdict
}
