//! x86_64: memory layout, boot structures (MP table, ACPI tables, e820,
//! zero page, PVH start info) and initial vCPU state.

pub mod acpi;
pub mod boot;
pub mod cpuid;
pub mod dsdt;
pub mod gdt;
pub mod interrupts;
pub mod layout;
pub mod mptable;
pub mod regs;
