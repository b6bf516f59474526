//! The balloon's state: what a paused device saves (target, `actual`,
//! interval, statistics, the held stats buffer), that a restored device
//! holds the same buffer and gives it back on its next poll, and every
//! corrupt state refused naming its field.

use virtio_queue::{Queue, QueueT};
use vm_memory::{Bytes, GuestAddress};

use super::super::stats::{VIRTIO_BALLOON_S_MEMFREE, VIRTIO_BALLOON_S_MINFLT};
use super::super::{BalloonHandle, DEFLATE_QUEUE, INFLATE_QUEUE};
use super::*;
use crate::devices::virtio::interrupt::IrqLine;
use crate::devices::virtio::queue::tests::Driver;
use crate::devices::virtio::worker::{Activation, Backend};
use crate::devices::virtio::{QUEUE_SIZE, VIRTIO_F_VERSION_1};
use crate::snapshot::state::MmioDeviceState;

/// Where the driver's stats buffer lies.
const STATS_BUF: u64 = 0x10000;
const FEATURES: u64 = VIRTIO_F_VERSION_1 | VIRTIO_BALLOON_F_STATS_VQ;

fn irq() -> Arc<Interrupt> {
    Arc::new(Interrupt::new(IrqLine::None))
}

fn stat(tag: u16, val: u64) -> Vec<u8> {
    let mut e = tag.to_le_bytes().to_vec();
    e.extend_from_slice(&val.to_le_bytes());
    e
}

/// Hands `queue` to `backend` as its stats queue (the other two unready).
fn activate(backend: &mut BalloonBackend, d: &Driver, queue: Queue) {
    let mut queues: Vec<Queue> = (0..3).map(|_| Queue::new(16).expect("queue")).collect();
    queues[STATS_QUEUE] = queue;
    backend.take_queues(Activation {
        mem: d.mem.clone(),
        queues,
        features: FEATURES,
    });
}

/// A running balloon whose driver changed `actual`, whose target and
/// interval were changed through the API, and whose stats buffer (head
/// 3) the device holds.
fn running(d: &mut Driver) -> (BalloonBackend, BalloonHandle) {
    let config = BalloonConfig {
        amount_mib: 1,
        deflate_on_oom: true,
        stats_polling_interval_s: 5,
    };
    let (info, mut backend, handle) = create(&config, irq()).expect("balloon");
    handle.set_target_mib(2);
    handle.set_polling_interval_s(7).expect("interval");
    info.config
        .write(ACTUAL_OFFSET as u64, &300u32.to_le_bytes());
    let queue = std::mem::replace(&mut d.queue, Queue::new(16).expect("queue"));
    activate(&mut backend, d, queue);
    let mut buf = stat(VIRTIO_BALLOON_S_MEMFREE, 12 << 20);
    buf.extend(stat(VIRTIO_BALLOON_S_MINFLT, 42));
    d.mem
        .write_slice(&buf, GuestAddress(STATS_BUF))
        .expect("stats");
    d.chain(3, &[(STATS_BUF, buf.len() as u32, false)]);
    d.publish(3);
    backend.stats();
    assert!(d.used().is_empty(), "the device holds the buffer");
    (backend, handle)
}

#[test]
fn a_paused_balloon_saves_what_changed_and_a_restored_one_holds_the_same_buffer() {
    let mut d = Driver::new();
    let (backend, handle) = running(&mut d);
    let MmioDeviceState::Balloon(state) = backend.snapshot_state().expect("a state") else {
        panic!("not a balloon state");
    };
    assert_eq!(
        state,
        BalloonState {
            target_pages: 512,
            actual_pages: 300,
            deflate_on_oom: true,
            stats_polling_interval_s: 7,
            stats_desc_index: Some(3),
            latest_stats: vec![
                (VIRTIO_BALLOON_S_MINFLT, 42),
                (VIRTIO_BALLOON_S_MEMFREE, 12 << 20)
            ],
        }
    );
    // The held buffer is in flight on the stats queue.
    let queues = backend.queue_states().expect("queues");
    let q = queues[STATS_QUEUE];
    assert_eq!((q.next_avail, q.next_used), (1, 0));

    let bytes = postcard::to_stdvec(&state).expect("encode");
    let back: BalloonState = postcard::from_bytes(&bytes).expect("decode");
    assert_eq!(back, state);
    let mut restored = BalloonBackend::restore(irq(), &back).expect("restore");
    let h = restored.handle();
    assert_eq!(h.config(), handle.config());
    assert_eq!(
        h.config(),
        BalloonConfig {
            amount_mib: 2,
            deflate_on_oom: true,
            stats_polling_interval_s: 7
        }
    );
    assert_eq!((h.target_pages(), h.actual_pages()), (512, 300));
    assert_eq!(h.statistics(), handle.statistics());
    assert_eq!(
        restored.info().features,
        FEATURES | super::super::VIRTIO_BALLOON_F_DEFLATE_ON_OOM
    );
    assert_eq!(restored.save(), state, "saved again before activation");

    // The transport hands the queue back as it was; the next poll gives
    // the held buffer back, and the device holds nothing more.
    let queue = Queue::try_from(q).expect("queue");
    activate(&mut restored, &d, queue);
    restored.poll_stats();
    assert_eq!(d.used(), vec![(3, 0)]);
    assert_eq!(restored.save().stats_desc_index, None);
    restored.poll_stats();
    assert_eq!(d.used().len(), 1);
}

/// A transport an activated balloon with `s` could have: three ready
/// queues, nothing in flight but the held stats buffer.
fn transport(s: &BalloonState) -> TransportState {
    let mut config = s.target_pages.to_le_bytes().to_vec();
    config.extend(s.actual_pages.to_le_bytes());
    let queue = |i: u64| QueueSnapshot {
        max_size: QUEUE_SIZE,
        size: 16,
        ready: true,
        desc_table: 0x1000 * (i + 1),
        avail_ring: 0x1000 * (i + 1) + 0x100,
        used_ring: 0x1000 * (i + 1) + 0x200,
        next_avail: 9,
        next_used: 9,
        event_idx: false,
    };
    let mut queues: Vec<_> = (0..3).map(queue).collect();
    queues[STATS_QUEUE].next_avail += u16::from(s.stats_desc_index.is_some());
    TransportState {
        device_type: 5,
        status: 0xf,
        device_features_sel: 0,
        driver_features_sel: 0,
        driver_features: FEATURES,
        queue_sel: 0,
        activated: true,
        queues,
        interrupt_status: 0,
        needs_reset: false,
        config_generation: 1,
        config,
    }
}

fn good() -> BalloonState {
    BalloonState {
        target_pages: 256,
        actual_pages: 256,
        deflate_on_oom: false,
        stats_polling_interval_s: 1,
        stats_desc_index: Some(4),
        latest_stats: vec![(0, 11), (15, 2)],
    }
}

const MEMORY: u64 = 32 << 20;

#[test]
fn corrupt_balloon_states_are_refused_naming_the_field() {
    assert!(good().check(&transport(&good()), MEMORY).is_ok());
    type Change = fn(&mut BalloonState, &mut TransportState);
    let cases: [(Change, &str, &str); 13] = [
        (
            |s, _| s.target_pages = 257,
            "`target_pages`",
            "whole number of MiB",
        ),
        (
            |s, t| {
                s.target_pages = 32 * 256 + 256;
                *t = transport(s);
            },
            "`target_pages`",
            "more than the guest's 32 MiB",
        ),
        (
            |s, _| s.actual_pages = 7,
            "`target_pages`",
            "configuration space",
        ),
        (
            |_, t| t.config.push(0),
            "`target_pages`",
            "configuration space",
        ),
        (
            |s, t| {
                s.stats_polling_interval_s = 0;
                s.latest_stats.clear();
                *t = transport(s);
            },
            "`stats_desc_index`",
            "without statistics",
        ),
        (
            |s, _| {
                s.stats_polling_interval_s = 0;
                s.stats_desc_index = None;
            },
            "`latest_stats`",
            "without statistics",
        ),
        (
            |s, _| s.latest_stats.push((16, 1)),
            "`latest_stats`",
            "unknown tag 16",
        ),
        (
            |s, _| s.latest_stats.insert(1, (0, 3)),
            "`latest_stats`",
            "twice",
        ),
        // A held buffer the queue does not count, and one it counts that
        // nothing holds (the guest would wait for it forever).
        (
            |s, _| s.stats_desc_index = None,
            "`stats_desc_index`",
            "queue 2 has 1 chain",
        ),
        (
            |_, t| t.queues[STATS_QUEUE].next_avail -= 1,
            "`stats_desc_index`",
            "queue 2 has 0 chain",
        ),
        (
            |_, t| t.queues[INFLATE_QUEUE].next_avail += 1,
            "`stats_desc_index`",
            "queue 0 has 1 chain",
        ),
        (
            |s, _| s.stats_desc_index = Some(16),
            "`stats_desc_index`",
            "16 is not a descriptor",
        ),
        (
            |_, t| t.driver_features = VIRTIO_F_VERSION_1,
            "`stats_desc_index`",
            "accepted stats queue",
        ),
    ];
    for (change, field, why) in cases {
        let mut s = good();
        let mut t = transport(&s);
        change(&mut s, &mut t);
        let Err(e) = s.check(&t, MEMORY) else {
            panic!("{s:?} with {t:?} passed");
        };
        let msg = e.to_string();
        assert!(msg.contains(field) && msg.contains(why), "{msg}");
        assert!(msg.starts_with("Invalid balloon state"), "{msg}");
    }
    // A held buffer on a device the driver never started.
    let mut t = transport(&good());
    t.activated = false;
    assert!(good().check(&t, MEMORY).is_err());
    // Nothing held: fine, and an unready queue's positions are not looked
    // at.
    let s = BalloonState {
        stats_desc_index: None,
        ..good()
    };
    let mut t = transport(&s);
    t.queues[DEFLATE_QUEUE].ready = false;
    t.queues[DEFLATE_QUEUE].next_avail = 3;
    assert!(s.check(&t, MEMORY).is_ok());
    // restore() refuses what validate() refuses.
    let s = BalloonState {
        latest_stats: vec![(99, 1)],
        ..good()
    };
    assert!(BalloonBackend::restore(irq(), &s).is_err());
}
