//! The state file parser against broken and hostile files: every
//! truncation, every single-bit flip, other magics and versions, lengths
//! that lie, payloads that decode to impossible machines (with a valid
//! checksum), and deterministic mutations of the payload.

use kvm_bindings::{
    kvm_clock_data, kvm_cpuid_entry2, kvm_irqchip, kvm_lapic_state, kvm_msr_entry, kvm_regs,
    kvm_xsave,
};

use super::*;
use crate::devices::legacy::cmos::CmosState;
use crate::devices::legacy::i8042::I8042State;
use crate::devices::legacy::serial::SerialState;
use crate::devices::virtio::mmio::persist::TransportState;
use crate::devices::virtio::rng::persist::RngState;
use crate::devices::virtio::vsock::persist::VsockState;
use crate::snapshot::raw::Raw;
use crate::snapshot::state::*;

fn vcpu(rip: u64) -> VcpuState {
    VcpuState {
        regs: Raw(kvm_regs {
            rip,
            rax: 42,
            ..Default::default()
        }),
        sregs: Raw(Default::default()),
        fpu: FpuState {
            fcw: 0x37f,
            mxcsr: 0x1f80,
            ..Default::default()
        },
        xsave: Some(Raw(kvm_xsave::default())),
        xcrs: Some(Raw(Default::default())),
        debugregs: Some(Raw(Default::default())),
        lapic: Some(Raw(kvm_lapic_state::default())),
        msrs: vec![Raw(kvm_msr_entry {
            index: 0x10,
            data: 123_456,
            ..Default::default()
        })],
        mp_state: Raw(Default::default()),
        vcpu_events: Raw(Default::default()),
        cpuid: vec![Raw(kvm_cpuid_entry2 {
            function: 1,
            eax: 0x806f8,
            ..Default::default()
        })],
        tsc_khz: Some(2_000_000),
    }
}

/// A plausible two-vCPU state (no KVM needed).
pub(super) fn sample_state() -> MicrovmState {
    MicrovmState {
        machine: MachineState::new(2, 32),
        vm: VmState {
            irqchip: Some(IrqchipState {
                pic_master: Raw(kvm_irqchip::default()),
                pic_slave: Raw(kvm_irqchip {
                    chip_id: 1,
                    ..Default::default()
                }),
                ioapic: Raw(kvm_irqchip {
                    chip_id: 2,
                    ..Default::default()
                }),
            }),
            pit: Some(Raw(Default::default())),
            clock: Some(Raw(kvm_clock_data {
                clock: 77,
                ..Default::default()
            })),
        },
        vcpus: vec![vcpu(0x100000), vcpu(0)],
        devices: DevicesState {
            serial: SerialState {
                line_control: 3,
                in_buffer: b"ab".to_vec(),
                ..Default::default()
            },
            i8042: I8042State {
                ctr: 1,
                output: vec![0x14],
                writing_ctr: false,
            },
            cmos: CmosState {
                index: 0x0b,
                data: vec![7; 128],
            },
            mmio: Vec::new(),
        },
    }
}

fn encoded() -> Vec<u8> {
    encode(&sample_state()).expect("encode")
}

#[test]
fn a_state_file_round_trips() {
    let bytes = encoded();
    assert_eq!(&bytes[..8], b"VSSLSNAP");
    let state = decode(&bytes).expect("decode");
    assert_eq!(state.machine, MachineState::new(2, 32));
    assert_eq!(state.vcpus.len(), 2);
    assert_eq!(state.vcpus[0].regs.rip, 0x100000);
    assert_eq!(state.vcpus[0].regs.rax, 42);
    assert_eq!(state.vcpus[0].msrs[0].data, 123_456);
    assert_eq!(state.vcpus[0].cpuid[0].eax, 0x806f8);
    assert_eq!(state.vcpus[1].fpu.mxcsr, 0x1f80);
    assert_eq!(state.vm.clock.as_ref().map(|c| c.clock), Some(77));
    assert_eq!(state.devices.serial.in_buffer, b"ab");
    assert_eq!(state.devices.cmos.data, vec![7; 128]);
}

#[test]
fn every_truncation_is_refused_as_truncated() {
    let bytes = encoded();
    for len in 0..bytes.len() {
        match decode(&bytes[..len]) {
            Err(StateFileError::Truncated { .. }) => {}
            other => panic!("{len} bytes: {other:?}"),
        }
    }
}

#[test]
fn every_single_bit_flip_is_refused() {
    let bytes = encoded();
    // Every bit of the header, and of every 61st payload byte (all of
    // them would take minutes in a debug build).
    let bytes_flipped = (0..HEADER_LEN).chain((HEADER_LEN..bytes.len()).step_by(61));
    for byte in bytes_flipped {
        for bit in 0..8 {
            let mut b = bytes.clone();
            b[byte] ^= 1 << bit;
            let err = decode(&b).expect_err("a flipped bit was accepted");
            let expected = match byte {
                0..=7 => matches!(err, StateFileError::BadMagic),
                8..=11 => matches!(err, StateFileError::Version { .. }),
                12..=15 => matches!(err, StateFileError::Flags(_)),
                16..=23 => matches!(
                    err,
                    StateFileError::Truncated { .. } | StateFileError::TrailingBytes(_)
                ),
                _ => matches!(err, StateFileError::Checksum),
            };
            assert!(expected, "byte {byte} bit {bit}: {err:?}");
        }
    }
}

#[test]
fn other_magics_versions_and_lengths_are_refused_with_their_reason() {
    let bytes = encoded();
    let mut b = bytes.clone();
    b[..8].copy_from_slice(b"QEVM\0\0\0\x03");
    assert!(matches!(decode(&b), Err(StateFileError::BadMagic)));
    assert!(matches!(
        decode(b"{\"json\": 1}"),
        Err(StateFileError::BadMagic)
    ));

    // 1: the format before virtio devices were saved; 2: before virtio-net;
    // 3: before the balloon.
    for version in [0u32, 1, 2, 3, 5, u32::MAX] {
        let mut b = bytes.clone();
        b[8..12].copy_from_slice(&version.to_le_bytes());
        let err = decode(&b).unwrap_err();
        assert!(matches!(err, StateFileError::Version { found } if found == version));
        assert!(err
            .to_string()
            .contains(&format!("format version {version}")));
        assert!(err.to_string().contains("reads version 4 only"));
    }
    // A newer file cut short still says it is from another version.
    let mut b = bytes[..20].to_vec();
    b[8..12].copy_from_slice(&5u32.to_le_bytes());
    assert!(matches!(
        decode(&b),
        Err(StateFileError::Version { found: 5 })
    ));

    let mut b = bytes.clone();
    b[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(matches!(decode(&b), Err(StateFileError::Truncated { .. })));
    let mut b = bytes.clone();
    b.extend_from_slice(b"extra");
    assert!(matches!(decode(&b), Err(StateFileError::TrailingBytes(5))));
}

/// `state` re-encoded with a valid header and checksum.
fn sealed(state: &MicrovmState) -> Vec<u8> {
    encode(state).expect("encode")
}

fn invalid(state: &MicrovmState) -> String {
    match decode(&sealed(state)) {
        Err(StateFileError::Invalid(e)) => e.to_string(),
        other => panic!("accepted or refused for another reason: {other:?}"),
    }
}

#[test]
fn impossible_machines_with_a_valid_checksum_are_refused() {
    let mut s = sample_state();
    s.machine.vcpu_count = 0;
    assert!(invalid(&s).contains("vcpu_count is 0"));

    let mut s = sample_state();
    s.machine.vcpu_count = 255;
    assert!(invalid(&s).contains("vcpu_count is 255"));

    let mut s = sample_state();
    s.vcpus.pop();
    assert!(invalid(&s).contains("1 vCPU states for 2 vCPUs"));

    let mut s = sample_state();
    s.machine = MachineState::new(2, 2 << 20);
    assert!(invalid(&s).contains("memory_mib is 2097152"));

    let mut s = sample_state();
    s.machine.memory_regions[0].size += 4096;
    assert!(invalid(&s).contains("not vessel's layout"));

    let mut s = sample_state();
    s.machine.memory_regions.push(MemoryRegionState {
        base: 1 << 32,
        size: 1 << 20,
    });
    assert!(invalid(&s).contains("not vessel's layout"));

    let mut s = sample_state();
    s.vcpus[1].cpuid.clear();
    assert!(invalid(&s).contains("vCPU 1 has 0 CPUID entries"));

    let mut s = sample_state();
    s.vcpus[0].lapic = None;
    assert!(invalid(&s).contains("vCPU 0 has no local APIC"));

    let mut s = sample_state();
    s.devices.serial.in_buffer = vec![0; 65];
    assert!(invalid(&s).contains("serial"));

    let mut s = sample_state();
    s.devices.i8042.output = vec![0; 17];
    assert!(invalid(&s).contains("i8042"));

    let mut s = sample_state();
    s.devices.cmos.data.truncate(127);
    assert!(invalid(&s).contains("cmos"));

    let mut s = sample_state();
    let dev = |base| VirtioDeviceState {
        id: "entropy".into(),
        base,
        len: 0x1000,
        irq: 5,
        transport: TransportState {
            device_type: 4,
            status: 0,
            device_features_sel: 0,
            driver_features_sel: 0,
            driver_features: 0,
            queue_sel: 0,
            activated: false,
            queues: Vec::new(),
            interrupt_status: 0,
            needs_reset: false,
            config_generation: 0,
            config: Vec::new(),
        },
        device: MmioDeviceState::Rng(RngState::default()),
    };
    s.devices.mmio = vec![dev(0xd000_0000), dev(0xd000_0800)];
    assert!(invalid(&s).contains("overlap"));
    s.devices.mmio = vec![dev(u64::MAX - 10)];
    assert!(invalid(&s).contains("bad range"));
    let mut vsock = dev(0xd000_0000);
    vsock.device = MmioDeviceState::Vsock(VsockState {
        guest_cid: 1,
        uds_path: "/v.sock".into(),
    });
    s.devices.mmio = vec![vsock];
    let err = invalid(&s);
    assert!(
        err.contains("virtio-vsock") && err.contains("`guest_cid`"),
        "{err}"
    );
}

#[test]
fn payloads_that_do_not_decode_are_refused() {
    // Empty, garbage, and a list length of 2^60 (no allocation of that).
    for payload in [&b""[..], b"\xff\xff\xff", &[0x80; 12][..]] {
        assert!(matches!(
            decode(&seal(payload)),
            Err(StateFileError::Decode(_))
        ));
    }
    let good = postcard::to_stdvec(&sample_state()).expect("encode");
    let mut extra = good.clone();
    extra.push(0);
    assert!(matches!(
        decode(&seal(&extra)),
        Err(StateFileError::PayloadTrailing(1))
    ));
}

#[test]
fn mutated_payloads_with_valid_checksums_never_panic() {
    let good = postcard::to_stdvec(&sample_state()).expect("encode");
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut accepted = 0;
    for _ in 0..3000 {
        let mut p = good.clone();
        for _ in 0..1 + next() % 4 {
            let at = (next() % p.len() as u64) as usize;
            match next() % 3 {
                0 => p[at] = next() as u8,
                1 => {
                    p.remove(at);
                }
                _ => p.insert(at, next() as u8),
            }
        }
        if let Ok(state) = decode(&seal(&p)) {
            // Whatever is accepted is within limits.
            assert!(state.validate().is_ok());
            accepted += 1;
        }
    }
    // Most single-byte changes hit a register image and stay decodable;
    // the test is that nothing panics and nothing invalid gets through.
    assert!(accepted < 3000);
}

#[test]
fn read_refuses_a_file_too_large_before_reading_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state");
    let f = std::fs::File::create(&path).expect("create");
    f.set_len(MAX_STATE_LEN + HEADER_LEN as u64 + 1)
        .expect("size");
    assert!(matches!(read(&path), Err(StateFileError::TooLarge { .. })));
    let missing = dir.path().join("missing");
    let err = read(&missing).unwrap_err();
    assert!(matches!(err, StateFileError::Read { .. }));
    assert!(err.to_string().contains("missing"));
    std::fs::write(&path, encoded()).expect("write");
    assert!(read(&path).is_ok());
}
