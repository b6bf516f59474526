//! The devices' groups, with Firecracker's names: `uart` (COM1), `block`
//! (every virtio-blk drive together) and `entropy` (virtio-rng). Only the
//! counters vessel actually bumps are declared: a field that is always 0
//! because nothing counts it would read as "no errors" when it means "not
//! measured".

use vm_superio::serial::SerialEvents;

use super::store::metric_group;
use super::METRICS;

metric_group! {
    /// `uart`: COM1, counted by vm-superio's event hooks ([`UartEvents`]).
    pub struct SerialDeviceMetrics {
        /// Bytes the guest read from the receive buffer.
        read_count: SharedIncMetric,
        /// Bytes the guest wrote that reached the console sink.
        write_count: SharedIncMetric,
        /// Bytes the guest wrote that the sink refused (dropped).
        missed_write_count: SharedIncMetric,
    }
}

metric_group! {
    /// `block`: virtio-blk requests, counted on the device threads.
    pub struct BlockDeviceMetrics {
        /// Bytes read from images into the guest.
        read_bytes: SharedIncMetric,
        /// Bytes written from the guest to images.
        write_bytes: SharedIncMetric,
        /// Successful read requests.
        read_count: SharedIncMetric,
        /// Successful write requests.
        write_count: SharedIncMetric,
        /// Flush requests.
        flush_count: SharedIncMetric,
        /// Requests that did not parse (bad header, no status byte).
        invalid_reqs_count: SharedIncMetric,
        /// Requests answered with an error status.
        execute_fails: SharedIncMetric,
    }
}

impl BlockDeviceMetrics {
    /// Counts a successful read of `bytes`.
    pub fn read(&self, bytes: u64) {
        self.read_count.inc();
        self.read_bytes.add(bytes);
    }

    /// Counts a successful write of `bytes`.
    pub fn write(&self, bytes: u64) {
        self.write_count.inc();
        self.write_bytes.add(bytes);
    }
}

metric_group! {
    /// `entropy`: virtio-rng requests.
    pub struct EntropyDeviceMetrics {
        /// Requests served.
        entropy_event_count: SharedIncMetric,
        /// Random bytes given to the guest.
        entropy_bytes: SharedIncMetric,
        /// `getrandom` failures on the host.
        host_rng_fails: SharedIncMetric,
    }
}

/// vm-superio's serial event hooks, counting into [`METRICS`]`.uart`.
#[derive(Debug, Clone, Copy, Default)]
pub struct UartEvents;

impl SerialEvents for UartEvents {
    fn buffer_read(&self) {
        METRICS.uart.read_count.inc();
    }

    fn out_byte(&self) {
        METRICS.uart.write_count.inc();
    }

    fn tx_lost_byte(&self) {
        METRICS.uart.missed_write_count.inc();
    }

    fn in_buffer_empty(&self) {}
}

metric_group! {
    /// `net`: every virtio-net interface together, counted on the device
    /// threads (bytes are Ethernet frames, without the virtio-net header).
    pub struct NetDeviceMetrics {
        /// Bytes of frames delivered to the guest.
        rx_bytes_count: SharedIncMetric,
        /// Frames delivered to the guest.
        rx_packets_count: SharedIncMetric,
        /// Frames from the tap that were dropped: the guest's buffer could
        /// not hold them, or reading the tap failed.
        rx_fails: SharedIncMetric,
        /// Bytes of frames the guest sent to the tap.
        tx_bytes_count: SharedIncMetric,
        /// Frames the guest sent to the tap.
        tx_packets_count: SharedIncMetric,
        /// Frames the tap refused (dropped).
        tx_fails: SharedIncMetric,
        /// TX chains that were not a frame (too short or long, writable
        /// buffers, guest memory gone).
        tx_malformed_frames: SharedIncMetric,
    }
}
