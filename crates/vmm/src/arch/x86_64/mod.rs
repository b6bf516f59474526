//! x86_64: memory layout, boot structures and initial vCPU state.

pub mod boot;
pub mod cpuid;
pub mod gdt;
pub mod interrupts;
pub mod layout;
pub mod mptable;
pub mod regs;
