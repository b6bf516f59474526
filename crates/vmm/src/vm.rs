//! A KVM virtual machine: the `/dev/kvm` handle, the VM file descriptor,
//! guest memory registered as KVM memory slots, and the in-kernel interrupt
//! controller and PIT.

use kvm_bindings::{kvm_pit_config, kvm_userspace_memory_region, CpuId, KVM_PIT_SPEAKER_DUMMY};
use kvm_ioctls::{Cap, Kvm, VmFd};
use vm_memory::{Address, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion};

use crate::arch::x86_64::cpuid::MAX_CPUID_ENTRIES;
use crate::arch::x86_64::layout::{KVM_IDENTITY_MAP_ADDRESS, KVM_TSS_ADDRESS};
use crate::vcpu::{Vcpu, VcpuError};

/// Errors creating or configuring the VM.
#[derive(Debug, thiserror::Error)]
pub enum VmError {
    /// `/dev/kvm` cannot be opened.
    #[error("Cannot open /dev/kvm (is KVM available and accessible to this user?)")]
    OpenKvm(#[source] kvm_ioctls::Error),
    /// The KVM API version is not the stable one.
    #[error("KVM API version {0} is not supported (vessel needs 12)")]
    ApiVersion(i32),
    /// A capability vessel cannot do without is missing.
    #[error("KVM lacks the {0} capability")]
    MissingCap(&'static str),
    /// KVM_CREATE_VM failed.
    #[error("Cannot create the KVM virtual machine")]
    CreateVm(#[source] kvm_ioctls::Error),
    /// Registering guest memory failed.
    #[error("Cannot register guest memory slot {slot} ({size:#x} bytes at {guest:#x}) with KVM")]
    MemorySlot {
        /// Slot number.
        slot: u32,
        /// Guest physical address.
        guest: u64,
        /// Size.
        size: u64,
        /// The cause.
        #[source]
        source: kvm_ioctls::Error,
    },
    /// More memory regions than KVM has slots.
    #[error("Guest memory has {regions} regions but KVM offers {slots} slots")]
    TooManyRegions {
        /// Regions wanted.
        regions: usize,
        /// Slots available.
        slots: usize,
    },
    /// Setting up the TSS, identity map, irqchip or PIT failed.
    #[error("Cannot {what}")]
    Setup {
        /// What failed.
        what: &'static str,
        /// The cause.
        #[source]
        source: kvm_ioctls::Error,
    },
    /// KVM_GET_SUPPORTED_CPUID failed.
    #[error("Cannot read the CPUID KVM supports")]
    SupportedCpuid(#[source] kvm_ioctls::Error),
    /// More vCPUs than KVM allows.
    #[error("{wanted} vCPUs asked for, KVM allows at most {max}")]
    TooManyVcpus {
        /// vCPUs asked for.
        wanted: usize,
        /// KVM's limit.
        max: usize,
    },
    /// Creating a vCPU failed.
    #[error("Cannot create vCPU {0}")]
    CreateVcpu(u8, #[source] VcpuError),
}

fn setup(what: &'static str) -> impl FnOnce(kvm_ioctls::Error) -> VmError {
    move |source| VmError::Setup { what, source }
}

/// A KVM VM with its guest memory.
#[derive(Debug)]
pub struct Vm {
    // Field order matters: the VM fd is closed before the memory it maps is
    // unmapped.
    fd: VmFd,
    kvm: Kvm,
    memory: GuestMemoryMmap,
    irqchip: bool,
    pit: bool,
}

/// Opens `/dev/kvm` and checks the API version.
pub fn open_kvm() -> Result<Kvm, VmError> {
    let kvm = Kvm::new().map_err(VmError::OpenKvm)?;
    let version = kvm.get_api_version();
    if version != kvm_bindings::KVM_API_VERSION as i32 {
        return Err(VmError::ApiVersion(version));
    }
    Ok(kvm)
}

impl Vm {
    /// Creates a VM and registers `memory` with it.
    pub fn new(memory: GuestMemoryMmap) -> Result<Self, VmError> {
        let kvm = open_kvm()?;
        if !kvm.check_extension(Cap::UserMemory) {
            return Err(VmError::MissingCap("KVM_CAP_USER_MEMORY"));
        }
        let fd = kvm.create_vm().map_err(VmError::CreateVm)?;
        let vm = Vm {
            fd,
            kvm,
            memory,
            irqchip: false,
            pit: false,
        };
        vm.register_memory()?;
        Ok(vm)
    }

    fn register_memory(&self) -> Result<(), VmError> {
        let slots = self.kvm.get_nr_memslots();
        let regions = self.memory.num_regions();
        if regions > slots {
            return Err(VmError::TooManyRegions { regions, slots });
        }
        for (slot, region) in (0u32..).zip(self.memory.iter()) {
            let guest = region.start_addr().raw_value();
            let size = region.len();
            let mem_region = kvm_userspace_memory_region {
                slot,
                guest_phys_addr: guest,
                memory_size: size,
                userspace_addr: region.as_ptr() as u64,
                flags: 0,
            };
            // SAFETY: the region is a live anonymous mapping of `size` bytes
            // owned by `self.memory`, which lives as long as the VM fd (the
            // fd is declared first, so it is closed first on drop); slots do
            // not overlap because the regions of a GuestMemoryMmap do not.
            unsafe { self.fd.set_user_memory_region(mem_region) }.map_err(|source| {
                VmError::MemorySlot {
                    slot,
                    guest,
                    size,
                    source,
                }
            })?;
        }
        Ok(())
    }

    /// Sets the TSS and identity-map pages and creates the in-kernel
    /// interrupt controller (PIC, I/O APIC, local APICs) and PIT when KVM
    /// offers them. Must run before any vCPU is created.
    pub fn setup_irqchip(&mut self) -> Result<(), VmError> {
        let tss = usize::try_from(KVM_TSS_ADDRESS).unwrap_or(0);
        self.fd
            .set_tss_address(tss)
            .map_err(setup("set the TSS address"))?;
        if self.kvm.check_extension(Cap::SetIdentityMapAddr) {
            self.fd
                .set_identity_map_address(KVM_IDENTITY_MAP_ADDRESS)
                .map_err(setup("set the identity map address"))?;
        }
        if self.kvm.check_extension(Cap::Irqchip) {
            self.fd
                .create_irq_chip()
                .map_err(setup("create the in-kernel interrupt controller"))?;
            self.irqchip = true;
            if self.kvm.check_extension(Cap::Pit2) {
                let pit = kvm_pit_config {
                    flags: KVM_PIT_SPEAKER_DUMMY,
                    ..Default::default()
                };
                self.fd
                    .create_pit2(pit)
                    .map_err(setup("create the in-kernel PIT"))?;
                self.pit = true;
            }
        }
        Ok(())
    }

    /// Whether the interrupt controller is in the kernel.
    pub fn has_irqchip(&self) -> bool {
        self.irqchip
    }

    /// Whether the PIT is in the kernel.
    pub fn has_pit(&self) -> bool {
        self.pit
    }

    /// The `/dev/kvm` handle.
    pub fn kvm(&self) -> &Kvm {
        &self.kvm
    }

    /// The most vCPUs KVM allows in one VM.
    pub fn max_vcpus(&self) -> usize {
        self.kvm.get_max_vcpus()
    }

    /// CPUID as KVM supports it on this host (unfiltered).
    pub fn supported_cpuid(&self) -> Result<CpuId, VmError> {
        self.kvm
            .get_supported_cpuid(MAX_CPUID_ENTRIES)
            .map_err(VmError::SupportedCpuid)
    }

    /// Creates vCPU `index`.
    pub fn create_vcpu(&self, index: u8) -> Result<Vcpu, VmError> {
        if usize::from(index) >= self.max_vcpus() {
            return Err(VmError::TooManyVcpus {
                wanted: usize::from(index) + 1,
                max: self.max_vcpus(),
            });
        }
        Vcpu::new(&self.fd, index).map_err(|e| VmError::CreateVcpu(index, e))
    }

    /// The VM file descriptor.
    pub fn fd(&self) -> &VmFd {
        &self.fd
    }

    /// A second handle of the VM (a dup of its descriptor), for a device
    /// thread that raises its interrupt line itself (KVM_IRQ_LINE).
    pub fn clone_fd(&self) -> std::io::Result<VmFd> {
        use std::os::fd::AsRawFd;
        let fd = nix::unistd::dup(self.fd.as_raw_fd())?;
        // SAFETY: `fd` is a fresh duplicate of this VM's descriptor that
        // nothing else owns; the new VmFd takes ownership and closes it.
        unsafe { self.kvm.create_vmfd_from_rawfd(fd) }.map_err(std::io::Error::from)
    }

    /// Guest memory.
    pub fn memory(&self) -> &GuestMemoryMmap {
        &self.memory
    }
}
