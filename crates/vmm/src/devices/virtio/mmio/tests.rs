//! The transport's registers as a driver uses (and misuses) them.

use std::sync::mpsc::{channel, Sender};

use event_manager::EventOps;
use vm_memory::GuestAddress;

use super::*;
use crate::devices::virtio::interrupt::IrqLine;
use crate::devices::virtio::worker::{self, Backend};

struct Probe(Sender<&'static str>);

impl Backend for Probe {
    fn activate(&mut self, a: Activation, _: &mut EventOps) {
        let _ = self.0.send(if a.queues.len() == 2 {
            "activate"
        } else {
            "bad"
        });
    }
    fn queue_event(&mut self, index: usize, _: &mut EventOps) {
        let _ = self
            .0
            .send(if index == 1 { "notify 1" } else { "notify ?" });
    }
    fn reset(&mut self, _: &mut EventOps) {
        let _ = self.0.send("reset");
    }
}

fn transport() -> (MmioTransport, std::sync::mpsc::Receiver<&'static str>) {
    let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 1 << 20)]).expect("memory");
    let (tx, rx) = channel();
    let events: Vec<EventFd> = (0..2)
        .map(|_| EventFd::new(libc::EFD_NONBLOCK).expect("eventfd"))
        .collect();
    let clones = events
        .iter()
        .map(|e| e.try_clone().expect("clone"))
        .collect();
    let worker = worker::spawn("test-virtio".into(), Probe(tx), clones, false).expect("worker");
    let info = DeviceInfo {
        device_type: 2,
        queue_sizes: vec![16, 16],
        features: VIRTIO_F_VERSION_1 | 1 << 9,
        config: Arc::new(ConfigSpace::new(vec![0xaa, 0xbb], 1..2)),
    };
    let irq = Arc::new(Interrupt::new(IrqLine::None));
    let t = MmioTransport::new(info, mem, irq, worker, events).expect("transport");
    (t, rx)
}

fn rd(t: &mut MmioTransport, off: u32) -> u32 {
    let mut b = [0u8; 4];
    t.read(u64::from(off), &mut b);
    u32::from_le_bytes(b)
}

fn wr(t: &mut MmioTransport, off: u32, v: u32) {
    t.write(u64::from(off), &v.to_le_bytes());
}

fn setup_queue(t: &mut MmioTransport, i: u32, base: u32) {
    wr(t, VIRTIO_MMIO_QUEUE_SEL, i);
    assert_eq!(rd(t, VIRTIO_MMIO_QUEUE_NUM_MAX), 16);
    wr(t, VIRTIO_MMIO_QUEUE_NUM, 16);
    wr(t, VIRTIO_MMIO_QUEUE_DESC_LOW, base);
    wr(t, VIRTIO_MMIO_QUEUE_AVAIL_LOW, base + 0x400);
    wr(t, VIRTIO_MMIO_QUEUE_USED_LOW, base + 0x800);
    wr(t, VIRTIO_MMIO_QUEUE_READY, 1);
}

fn negotiate(t: &mut MmioTransport, high: u32) -> u32 {
    wr(t, VIRTIO_MMIO_STATUS, 1);
    wr(t, VIRTIO_MMIO_STATUS, 3);
    wr(t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
    wr(t, VIRTIO_MMIO_DRIVER_FEATURES, high);
    wr(t, VIRTIO_MMIO_STATUS, 3 | 8);
    rd(t, VIRTIO_MMIO_STATUS)
}

#[test]
fn identity_features_and_config_space() {
    let (mut t, _rx) = transport();
    assert_eq!(rd(&mut t, VIRTIO_MMIO_MAGIC_VALUE), MMIO_MAGIC);
    assert_eq!(rd(&mut t, VIRTIO_MMIO_VERSION), 2);
    assert_eq!(rd(&mut t, VIRTIO_MMIO_DEVICE_ID), 2);
    wr(&mut t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
    assert_eq!(rd(&mut t, VIRTIO_MMIO_DEVICE_FEATURES), 1 << 9);
    wr(&mut t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
    assert_eq!(rd(&mut t, VIRTIO_MMIO_DEVICE_FEATURES), 1);
    wr(&mut t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 7);
    assert_eq!(rd(&mut t, VIRTIO_MMIO_DEVICE_FEATURES), 0);
    // Unaligned or odd-sized register accesses read zero, write nothing.
    let mut b = [0xffu8; 2];
    t.read(1, &mut b);
    assert_eq!(b, [0, 0]);
    t.write(0x70, &[1, 0]);
    assert_eq!(rd(&mut t, VIRTIO_MMIO_STATUS), 0);
    // Config space: the driver writes only where the device allows.
    t.write(0x100, &[1, 2]);
    let mut c = [0u8; 4];
    t.read(0x100, &mut c);
    assert_eq!(
        c,
        [0xaa, 0xbb, 0, 0],
        "a write reaching a read-only byte is dropped"
    );
    t.write(0x101, &[2]);
    c = [0u8; 4];
    t.read(0x100, &mut c);
    assert_eq!(c, [0xaa, 2, 0, 0]);
}

#[test]
fn a_legacy_or_greedy_driver_does_not_get_features_ok() {
    let (mut t, _rx) = transport();
    assert_eq!(negotiate(&mut t, 0) & 8, 0, "no VERSION_1");
    wr(&mut t, VIRTIO_MMIO_STATUS, 0);
    assert_eq!(negotiate(&mut t, 1 | 2) & 8, 0, "a feature not offered");
    wr(&mut t, VIRTIO_MMIO_STATUS, 0);
    assert_eq!(negotiate(&mut t, 1), 3 | 8);
}

#[test]
fn driver_ok_activates_notify_wakes_and_reset_resets() {
    let (mut t, rx) = transport();
    negotiate(&mut t, 1);
    setup_queue(&mut t, 0, 0x1000);
    setup_queue(&mut t, 1, 0x2000);
    wr(&mut t, VIRTIO_MMIO_STATUS, 3 | 8 | 4);
    assert_eq!(rx.recv().expect("activation"), "activate");
    // Without an ioeventfd, QueueNotify reaches the transport.
    wr(&mut t, VIRTIO_MMIO_QUEUE_NOTIFY, 1);
    assert_eq!(rx.recv().expect("notify"), "notify 1");
    // Queue registers are frozen while the device runs.
    wr(&mut t, VIRTIO_MMIO_QUEUE_SEL, 0);
    wr(&mut t, VIRTIO_MMIO_QUEUE_READY, 0);
    assert_eq!(rd(&mut t, VIRTIO_MMIO_QUEUE_READY), 1);
    wr(&mut t, VIRTIO_MMIO_STATUS, 0);
    assert_eq!(rx.recv().expect("reset"), "reset");
    assert_eq!(rd(&mut t, VIRTIO_MMIO_STATUS), 0);
    assert_eq!(rd(&mut t, VIRTIO_MMIO_QUEUE_READY), 0);
}

#[test]
fn queues_outside_memory_are_not_activated() {
    let (mut t, rx) = transport();
    negotiate(&mut t, 1);
    setup_queue(&mut t, 0, 0x1000);
    wr(&mut t, VIRTIO_MMIO_QUEUE_SEL, 1);
    wr(&mut t, VIRTIO_MMIO_QUEUE_NUM, 16);
    wr(&mut t, VIRTIO_MMIO_QUEUE_DESC_LOW, 0xfff0_0000);
    wr(&mut t, VIRTIO_MMIO_QUEUE_READY, 1);
    wr(&mut t, VIRTIO_MMIO_STATUS, 3 | 8 | 4);
    let status = rd(&mut t, VIRTIO_MMIO_STATUS);
    assert_eq!(status & 4, 0);
    assert_ne!(status & VIRTIO_CONFIG_S_NEEDS_RESET, 0);
    assert!(rx.try_recv().is_err(), "nothing reached the device");
}
