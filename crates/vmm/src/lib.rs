//! vessel's microVM monitor: KVM virtual machines booted directly into a
//! Linux kernel (or any PVH / 64-bit Linux-protocol guest), with a serial
//! console and the PC legacy devices a kernel probes.
//!
//! Entry point: [`run_vm`] with a [`VmConfig`]. The layers below it are
//! public for tests and for the API server to come: [`vm::Vm`],
//! [`vcpu::Vcpu`] (`run() -> VmExit`), [`devices`], [`loader`] and
//! [`arch::x86_64`]. See docs/vmm.md.

#[cfg(not(target_arch = "x86_64"))]
compile_error!("vessel-vmm supports x86_64 hosts only");

pub mod api;
pub mod arch;
pub mod builder;
pub mod config;
pub mod controller;
pub mod devices;
pub mod loader;
pub mod logger;
pub mod memory;
pub mod metrics;
pub mod rate_limiter;
pub mod running;
pub mod seccomp;
pub mod snapshot;
pub mod teardown;
pub mod vcpu;
pub mod vm;

pub use builder::{start_vm, VmmError};
pub use config::{VmConfig, VmExitReason, DEFAULT_CMDLINE};
pub use devices::legacy::ConsoleOutput;
pub use running::{run_vm, RunningVm};
