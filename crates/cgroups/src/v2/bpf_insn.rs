//! A tiny eBPF instruction encoder: only the instructions the device filter needs.
//!
//! Each instruction is the kernel's 8-byte `struct bpf_insn`: an opcode, the destination and
//! source registers packed in one byte (as C bitfields, so their order follows the byte
//! order), a signed 16-bit jump offset and a signed 32-bit immediate. Jump offsets count
//! instructions from the one after the jump.
//!
//! The 32-bit ALU forms (`BPF_ALU`) are used for the arithmetic on context fields, so the
//! upper halves of the registers are always zero; the jumps are the 64-bit forms
//! (`BPF_JMP`), which exist on every kernel that has device programs (4.15+). Their
//! immediate is sign-extended, so callers only compare with values in `0..=i32::MAX`.

/// A register: r0 holds the return value, r1 the context pointer on entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reg(pub(crate) u8);

pub(crate) const R0: Reg = Reg(0);
pub(crate) const R1: Reg = Reg(1);
pub(crate) const R2: Reg = Reg(2);
pub(crate) const R3: Reg = Reg(3);
pub(crate) const R4: Reg = Reg(4);
pub(crate) const R5: Reg = Reg(5);

// Opcodes: class | operation | source (uapi/linux/bpf_common.h and bpf.h).
/// `BPF_LDX | BPF_MEM | BPF_W`: dst = *(u32 *)(src + off).
pub(crate) const LDX_W: u8 = 0x61;
/// `BPF_ALU | BPF_MOV | BPF_X`: dst = (u32) src.
pub(crate) const MOV32_REG: u8 = 0xbc;
/// `BPF_ALU | BPF_AND | BPF_K`: dst &= imm (32-bit).
pub(crate) const AND32_IMM: u8 = 0x54;
/// `BPF_ALU | BPF_RSH | BPF_K`: dst >>= imm (32-bit).
pub(crate) const RSH32_IMM: u8 = 0x74;
/// `BPF_ALU64 | BPF_MOV | BPF_K`: dst = imm.
pub(crate) const MOV64_IMM: u8 = 0xb7;
/// `BPF_JMP | BPF_JEQ | BPF_K`: if dst == imm goto +off.
pub(crate) const JEQ_IMM: u8 = 0x15;
/// `BPF_JMP | BPF_JNE | BPF_K`: if dst != imm goto +off.
pub(crate) const JNE_IMM: u8 = 0x55;
/// `BPF_JMP | BPF_JSET | BPF_K`: if dst & imm goto +off.
pub(crate) const JSET_IMM: u8 = 0x45;
/// `BPF_JMP | BPF_EXIT`: return r0.
pub(crate) const EXIT: u8 = 0x95;

/// One instruction, laid out exactly like the kernel's `struct bpf_insn`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Insn {
    pub(crate) code: u8,
    regs: u8,
    pub(crate) off: i16,
    pub(crate) imm: i32,
}

impl Insn {
    fn new(code: u8, dst: Reg, src: Reg, off: i16, imm: i32) -> Self {
        // `__u8 dst_reg:4; __u8 src_reg:4;` — the first bitfield takes the low bits on
        // little-endian targets and the high bits on big-endian ones.
        let regs = if cfg!(target_endian = "little") {
            (dst.0 & 0x0f) | (src.0 << 4)
        } else {
            (dst.0 << 4) | (src.0 & 0x0f)
        };
        Self {
            code,
            regs,
            off,
            imm,
        }
    }

    #[cfg(test)]
    pub(crate) fn dst(&self) -> Reg {
        if cfg!(target_endian = "little") {
            Reg(self.regs & 0x0f)
        } else {
            Reg(self.regs >> 4)
        }
    }

    #[cfg(test)]
    pub(crate) fn src(&self) -> Reg {
        if cfg!(target_endian = "little") {
            Reg(self.regs >> 4)
        } else {
            Reg(self.regs & 0x0f)
        }
    }

    /// dst = *(u32 *)(src + off)
    pub(crate) fn load_u32(dst: Reg, src: Reg, off: i16) -> Self {
        Self::new(LDX_W, dst, src, off, 0)
    }

    /// dst = (u32) src
    pub(crate) fn mov32(dst: Reg, src: Reg) -> Self {
        Self::new(MOV32_REG, dst, src, 0, 0)
    }

    /// dst &= imm (32-bit)
    pub(crate) fn and32(dst: Reg, imm: i32) -> Self {
        Self::new(AND32_IMM, dst, R0, 0, imm)
    }

    /// dst >>= imm (32-bit)
    pub(crate) fn rsh32(dst: Reg, imm: i32) -> Self {
        Self::new(RSH32_IMM, dst, R0, 0, imm)
    }

    /// dst = imm
    pub(crate) fn mov64(dst: Reg, imm: i32) -> Self {
        Self::new(MOV64_IMM, dst, R0, 0, imm)
    }

    /// if dst == imm goto +off
    pub(crate) fn jeq(dst: Reg, imm: i32, off: i16) -> Self {
        Self::new(JEQ_IMM, dst, R0, off, imm)
    }

    /// if dst != imm goto +off
    pub(crate) fn jne(dst: Reg, imm: i32, off: i16) -> Self {
        Self::new(JNE_IMM, dst, R0, off, imm)
    }

    /// if dst & imm goto +off
    pub(crate) fn jset(dst: Reg, imm: i32, off: i16) -> Self {
        Self::new(JSET_IMM, dst, R0, off, imm)
    }

    /// return r0
    pub(crate) fn exit() -> Self {
        Self::new(EXIT, R0, R0, 0, 0)
    }

    pub(crate) fn is_jump(&self) -> bool {
        matches!(self.code, JEQ_IMM | JNE_IMM | JSET_IMM)
    }
}

#[cfg(test)]
pub(crate) mod interpreter {
    //! Runs a program built from the instructions above on a device context, so tests can
    //! check what a program decides instead of only how it looks.

    use super::*;

    /// Runs `program` on the context `[access_type, major, minor]`; returns r0 at exit.
    /// Panics on anything the kernel's verifier would refuse (bad jumps, reads outside the
    /// context, falling off the end, loops).
    pub(crate) fn run(program: &[Insn], ctx: [u32; 3]) -> u64 {
        // r1 points to the context: represent it as address 0 of the three fields.
        let mut regs = [0u64; 11];
        let mut pc = 0usize;
        let mut steps = 0;
        loop {
            steps += 1;
            assert!(steps <= program.len(), "the program loops");
            let insn = program.get(pc).expect("the program runs off its end");
            let dst = usize::from(insn.dst().0);
            let src = usize::from(insn.src().0);
            let imm64 = i64::from(insn.imm) as u64;
            let imm32 = insn.imm as u32;
            let mut next = pc + 1;
            match insn.code {
                LDX_W => {
                    assert_eq!(src, 1, "only the context is read");
                    assert!(insn.off % 4 == 0 && (0..12).contains(&insn.off));
                    regs[dst] = u64::from(ctx[usize::try_from(insn.off / 4).unwrap()]);
                }
                MOV32_REG => regs[dst] = u64::from(regs[src] as u32),
                AND32_IMM => regs[dst] = u64::from(regs[dst] as u32 & imm32),
                RSH32_IMM => regs[dst] = u64::from((regs[dst] as u32) >> imm32),
                MOV64_IMM => regs[dst] = imm64,
                JEQ_IMM | JNE_IMM | JSET_IMM => {
                    let taken = match insn.code {
                        JEQ_IMM => regs[dst] == imm64,
                        JNE_IMM => regs[dst] != imm64,
                        _ => regs[dst] & imm64 != 0,
                    };
                    assert!(insn.off >= 0, "backward jump");
                    if taken {
                        next += usize::try_from(insn.off).unwrap();
                    }
                }
                EXIT => return regs[0],
                code => panic!("unknown opcode {code:#x}"),
            }
            pc = next;
        }
    }

    #[test]
    fn instructions_have_the_kernel_layout() {
        assert_eq!(std::mem::size_of::<Insn>(), 8);
        let insn = Insn::load_u32(R2, R1, 4);
        assert_eq!((insn.dst(), insn.src(), insn.off), (R2, R1, 4));
        if cfg!(target_endian = "little") {
            assert_eq!(insn.regs, 0x12);
        }
    }
}
