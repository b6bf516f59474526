//! The transport's state: saved from registers a driver wrote, restored
//! into a transport whose device thread gets the same queues, and refused
//! field by field when it could not come from a driver.

use std::sync::mpsc::{channel, Receiver, Sender};

use event_manager::EventOps;
use virtio_bindings::virtio_mmio::*;
use vm_memory::GuestAddress;

use super::*;
use crate::devices::bus::BusDevice;
use crate::devices::virtio::interrupt::IrqLine;
use crate::devices::virtio::worker::{self, Backend};
use crate::devices::virtio::ConfigSpace;

const MEM: u64 = 1 << 20;

/// Reports what it is given, and keeps the queues to report them back.
struct Recorder {
    tx: Sender<Vec<QueueState>>,
    queues: Vec<Queue>,
    report: bool,
}

impl Backend for Recorder {
    fn activate(&mut self, a: Activation, _: &mut EventOps) {
        let _ = self.tx.send(a.queues.iter().map(Queue::state).collect());
        self.queues = a.queues;
    }
    fn queue_event(&mut self, _: usize, _: &mut EventOps) {}
    fn reset(&mut self, _: &mut EventOps) {}
    fn queue_states(&self) -> Option<Vec<QueueState>> {
        self.report
            .then(|| self.queues.iter().map(Queue::state).collect())
    }
}

fn mem() -> GuestMemoryMmap {
    GuestMemoryMmap::from_ranges(&[(GuestAddress(0), MEM as usize)]).expect("memory")
}

fn info() -> DeviceInfo {
    DeviceInfo {
        device_type: 2,
        queue_sizes: vec![16, 16],
        features: VIRTIO_F_VERSION_1 | 1 << 9,
        config: Arc::new(ConfigSpace::new(vec![0xaa, 0xbb], 1..2)),
    }
}

fn parts(report: bool) -> (TransportArgs, Receiver<Vec<QueueState>>) {
    let (tx, rx) = channel();
    let events: Vec<EventFd> = (0..2)
        .map(|_| EventFd::new(libc::EFD_NONBLOCK).expect("eventfd"))
        .collect();
    let clones = events
        .iter()
        .map(|e| e.try_clone().expect("clone"))
        .collect();
    let backend = Recorder {
        tx,
        queues: Vec::new(),
        report,
    };
    let worker = worker::spawn("test-persist".into(), backend, clones, false).expect("worker");
    let args = TransportArgs {
        info: info(),
        mem: mem(),
        interrupt: Arc::new(Interrupt::new(IrqLine::None)),
        worker,
        queue_events: events,
        on_restore: None,
    };
    (args, rx)
}

fn transport(report: bool) -> (MmioTransport, Receiver<Vec<QueueState>>) {
    let (a, rx) = parts(report);
    let t = MmioTransport::new(a.info, a.mem, a.interrupt, a.worker, a.queue_events)
        .expect("transport");
    (t, rx)
}

fn wr(t: &mut MmioTransport, off: u32, v: u32) {
    t.write(u64::from(off), &v.to_le_bytes());
}

fn rd(t: &mut MmioTransport, off: u32) -> u32 {
    let mut b = [0u8; 4];
    t.read(u64::from(off), &mut b);
    u32::from_le_bytes(b)
}

/// A driver's setup: features, two queues of 8 at 0x10000 and 0x20000.
fn drive(t: &mut MmioTransport, driver_ok: bool) {
    wr(t, VIRTIO_MMIO_STATUS, 1);
    wr(t, VIRTIO_MMIO_STATUS, 3);
    wr(t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
    wr(t, VIRTIO_MMIO_DRIVER_FEATURES, 1);
    wr(t, VIRTIO_MMIO_STATUS, 3 | 8);
    for (i, base) in [(0u32, 0x10000u32), (1, 0x20000)] {
        wr(t, VIRTIO_MMIO_QUEUE_SEL, i);
        wr(t, VIRTIO_MMIO_QUEUE_NUM, 8);
        wr(t, VIRTIO_MMIO_QUEUE_DESC_LOW, base);
        wr(t, VIRTIO_MMIO_QUEUE_AVAIL_LOW, base + 0x400);
        wr(t, VIRTIO_MMIO_QUEUE_USED_LOW, base + 0x800);
        wr(t, VIRTIO_MMIO_QUEUE_READY, 1);
    }
    if driver_ok {
        wr(t, VIRTIO_MMIO_STATUS, 3 | 8 | 4);
    }
}

fn recv(rx: &Receiver<Vec<QueueState>>) -> Vec<QueueState> {
    rx.recv_timeout(std::time::Duration::from_secs(10))
        .expect("activation")
}

#[test]
fn an_active_transport_comes_back_with_its_queues_handed_to_the_device() {
    for report in [true, false] {
        let (mut t, rx) = transport(report);
        drive(&mut t, true);
        recv(&rx);
        // The device used 3 entries of queue 1: its used index says so.
        t.mem
            .write_obj(3u16, GuestAddress(0x20800 + 2))
            .expect("used idx");
        t.mem
            .write_obj(3u16, GuestAddress(0x20400 + 2))
            .expect("avail idx");
        t.interrupt.signal_used_queue();
        t.pause_worker();
        let mut state = t.save();
        t.resume_worker();
        assert!(state.activated);
        assert_eq!(state.status, 15);
        assert_eq!(state.driver_features, VIRTIO_F_VERSION_1);
        assert_eq!(state.queue_sel, 1);
        assert_eq!(state.interrupt_status, VIRTIO_MMIO_INT_VRING);
        assert_eq!(state.config, vec![0xaa, 0xbb]);
        assert_eq!(state.queues[1].used_ring, 0x20800);
        assert_eq!(state.queues[1].size, 8);
        if report {
            // The device reported its own positions (the recorder never
            // moved them).
            assert_eq!(state.queues[1].next_used, 0);
            state.queues[1].next_used = 3;
            state.queues[1].next_avail = 3;
        } else {
            // Taken from the used ring in guest memory.
            assert_eq!(
                (state.queues[1].next_avail, state.queues[1].next_used),
                (3, 3)
            );
        }

        let (mut args, rx2) = parts(true);
        args.mem = t.mem.clone();
        let mut r = MmioTransport::restore(args, &state).expect("restore");
        let given = recv(&rx2);
        assert_eq!(given.len(), 2);
        assert_eq!(
            (given[1].next_avail, given[1].next_used, given[1].size),
            (3, 3, 8)
        );
        assert!(given.iter().all(|q| q.ready));
        assert_eq!(rd(&mut r, VIRTIO_MMIO_STATUS), 15);
        assert_eq!(
            rd(&mut r, VIRTIO_MMIO_INTERRUPT_STATUS),
            VIRTIO_MMIO_INT_VRING
        );
        assert_eq!(rd(&mut r, VIRTIO_MMIO_QUEUE_READY), 1);
        r.pause_worker();
        assert_eq!(r.save(), state, "a restored transport saves the same state");
        r.resume_worker();
    }
}

#[test]
fn a_transport_being_set_up_comes_back_mid_setup() {
    let (mut t, rx) = transport(true);
    drive(&mut t, false);
    t.info.config.update(|b| b[0] = 0x11);
    let state = t.save();
    assert!(!state.activated);
    assert_eq!(state.config_generation, 1);
    let (args, rx2) = parts(true);
    let mut r = MmioTransport::restore(args, &state).expect("restore");
    assert_eq!(rd(&mut r, VIRTIO_MMIO_CONFIG_GENERATION), 1);
    assert_eq!(rd(&mut r, VIRTIO_MMIO_CONFIG) & 0xff, 0x11);
    // The driver finishes: the device gets the queues it set up.
    wr(&mut r, VIRTIO_MMIO_STATUS, 15);
    assert_eq!(recv(&rx2)[0].desc_table, 0x10000);
    assert!(rx.try_recv().is_err(), "the first device was never started");
}

/// A saved state with both queues in use at `next` entries.
fn active_state(next: u16) -> (TransportState, GuestMemoryMmap) {
    let mem = mem();
    let q = |base: u64| QueueSnapshot {
        max_size: 16,
        size: 8,
        ready: true,
        desc_table: base,
        avail_ring: base + 0x400,
        used_ring: base + 0x800,
        next_avail: next,
        next_used: next,
        event_idx: false,
    };
    for base in [0x10000u64, 0x20000] {
        mem.write_obj(next, GuestAddress(base + 0x802))
            .expect("used");
        mem.write_obj(next, GuestAddress(base + 0x402))
            .expect("avail");
    }
    let state = TransportState {
        device_type: 2,
        status: 15,
        device_features_sel: 1,
        driver_features_sel: 1,
        driver_features: VIRTIO_F_VERSION_1,
        queue_sel: 1,
        activated: true,
        queues: vec![q(0x10000), q(0x20000)],
        interrupt_status: 0,
        needs_reset: false,
        config_generation: 0,
        config: vec![0xaa, 0xbb],
    };
    (state, mem)
}

#[test]
fn impossible_states_are_refused_naming_the_field() {
    let (good, mem) = active_state(65535);
    assert_eq!(good.check(&info(), &mem), Ok(()));
    type Change = fn(&mut TransportState);
    let cases: [(Change, &str); 17] = [
        (|s| s.device_type = 1, "device_type"),
        (|s| s.status |= 0x40, "status"),
        (|s| s.status = 3, "activated"),
        (|s| s.driver_features |= 1 << 3, "driver_features"),
        (|s| s.driver_features = 1 << 9, "driver_features"),
        (|s| s.interrupt_status = 8, "interrupt_status"),
        (|s| s.config = vec![1], "config"),
        (|s| s.queues.truncate(1), "queues"),
        (|s| s.queues[0].max_size = 32, "queues[0].max_size"),
        (|s| s.queues[1].size = 0, "queues[1].size"),
        (|s| s.queues[1].size = 12, "queues[1].size"),
        (|s| s.queues[1].size = 32, "queues[1].size"),
        (
            |s| s.queues[0].desc_table = MEM - 64,
            "queues[0].desc_table",
        ),
        (
            |s| s.queues[0].avail_ring = u64::MAX - 1,
            "queues[0].avail_ring",
        ),
        (|s| s.queues[1].used_ring += 2, "queues[1].used_ring"),
        (|s| s.queues[1].next_used = 7, "queues[1].next_used"),
        (|s| s.queues[0].next_avail = 20, "queues[0].next_avail"),
    ];
    for (change, field) in cases {
        let mut s = good.clone();
        change(&mut s);
        let err = s.check(&info(), &mem).expect_err(field);
        assert_eq!(err.field, field, "{err}");
        assert!(err.to_string().contains(&format!("`{field}`")), "{err}");
    }
    // The available ring far ahead of the device: more than a queue's worth.
    let mut s = good.clone();
    s.queues[0].next_avail = 65535;
    mem.write_obj(100u16, GuestAddress(0x10402)).expect("avail");
    let err = s.check(&info(), &mem).expect_err("avail far ahead");
    assert_eq!(err.field, "queues[0].next_avail");

    // Positions only matter once the device runs; addresses only once ready.
    let mut s = good.clone();
    s.activated = false;
    s.status = 11;
    s.queues[1].next_used = 7;
    assert_eq!(s.check(&info(), &mem), Ok(()));
    s.queues[1].ready = false;
    s.queues[1].desc_table = u64::MAX;
    assert_eq!(s.check(&info(), &mem), Ok(()));

    // A refused state builds nothing.
    let mut bad = good.clone();
    bad.queues[0].size = 3;
    let (mut args, rx) = parts(true);
    args.mem = mem.clone();
    let err = MmioTransport::restore(args, &bad).expect_err("refused");
    assert_eq!(err.field, "queues[0].size");
    assert!(rx.try_recv().is_err());
}
