//! What the `vessel` and `vessel-vmm` programs share: the flags of
//! `vessel vm run`. `vessel` parses them (so that `--help`, usage errors and
//! their exit code 2 stay its own) and then execs `vessel-vmm`, the small
//! binary that runs the microVM, with the same arguments: the VMM process
//! carries only the VMM's code, not the container engine's (docs/vmm.md,
//! "The VMM's own binary").

#![forbid(unsafe_code)]

pub mod vm_args;
