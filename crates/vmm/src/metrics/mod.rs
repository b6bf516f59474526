//! Firecracker-compatible metrics: lock-free counters that the vCPU,
//! device and VMM threads bump as things happen, flushed by the VMM thread
//! as one JSON object per line to the file or named pipe given by
//! `PUT /metrics` (or the config file's `metrics.metrics_path`): every
//! [`FLUSH_INTERVAL`], on `PUT /actions {"action_type": "FlushMetrics"}`,
//! and once more when the VMM exits.
//!
//! The counters live in one process-wide [`METRICS`], as in Firecracker,
//! so that a device bumps one with a single line
//! (`METRICS.block.flush_count.inc()`) and no handle has to be threaded
//! through the builder. A vessel process runs one microVM, so process-wide
//! is per-VM. Counts are flushed as deltas since the previous flush
//! ([`store::SharedIncMetric`]), values as they are
//! ([`store::SharedStoreMetric`]). Group and field names are Firecracker's
//! where vessel has the same thing; see docs/vmm.md for the list and for
//! how a device adds its group.

pub mod api;
pub mod devices;
pub mod store;
pub mod writer;

use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use store::{metric_group, Flushed};

pub use devices::{
    BlockDeviceMetrics, EntropyDeviceMetrics, NetDeviceMetrics, SerialDeviceMetrics, UartEvents,
};
pub use writer::{MetricsError, MetricsWriter};

/// How often the metrics are flushed without being asked (Firecracker's 60 s).
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(60);

/// The process's counters.
pub static METRICS: Metrics = Metrics::new();

metric_group! {
    /// `vcpu`: KVM exits, counted on the vCPU threads.
    pub struct VcpuMetrics {
        /// `in` instructions that reached the VMM.
        exit_io_in: SharedIncMetric,
        /// `out` instructions that reached the VMM.
        exit_io_out: SharedIncMetric,
        /// Reads of unbacked guest-physical memory (MMIO).
        exit_mmio_read: SharedIncMetric,
        /// Writes to unbacked guest-physical memory (MMIO).
        exit_mmio_write: SharedIncMetric,
        /// Exits that end or break a vCPU's run other than a clean
        /// power-off or reset: halt without an in-kernel APIC, triple
        /// fault, internal (emulation) error, failed entry, an exit vessel
        /// does not handle, a failed KVM_RUN.
        failures: SharedIncMetric,
    }
}

metric_group! {
    /// `logger`: the metrics' own health.
    pub struct LoggerSystemMetrics {
        /// Flushes whose line could not be written (a full pipe nobody
        /// reads, a full disk).
        missed_metrics_count: SharedIncMetric,
    }
}

/// Every group, in the order they are written.
#[derive(Debug, Default)]
pub struct Metrics {
    /// `api_server`: startup times.
    pub api_server: api::ApiServerMetrics,
    /// `block`: all virtio-blk drives together.
    pub block: BlockDeviceMetrics,
    /// `get_api_requests`.
    pub get_api_requests: api::GetRequestsMetrics,
    /// `uart`: COM1.
    pub uart: SerialDeviceMetrics,
    /// `logger`.
    pub logger: LoggerSystemMetrics,
    /// `patch_api_requests`.
    pub patch_api_requests: api::PatchRequestsMetrics,
    /// `put_api_requests`.
    pub put_api_requests: api::PutRequestsMetrics,
    /// `vcpu`: all vCPUs together.
    pub vcpu: VcpuMetrics,
    /// `entropy`: virtio-rng.
    pub entropy: EntropyDeviceMetrics,
    /// `net`: all virtio-net interfaces together.
    pub net: NetDeviceMetrics,
}

impl Metrics {
    /// Every counter at zero.
    pub const fn new() -> Self {
        Metrics {
            api_server: api::ApiServerMetrics::new(),
            block: BlockDeviceMetrics::new(),
            get_api_requests: api::GetRequestsMetrics::new(),
            uart: SerialDeviceMetrics::new(),
            logger: LoggerSystemMetrics::new(),
            patch_api_requests: api::PatchRequestsMetrics::new(),
            put_api_requests: api::PutRequestsMetrics::new(),
            vcpu: VcpuMetrics::new(),
            entropy: EntropyDeviceMetrics::new(),
            net: NetDeviceMetrics::new(),
        }
    }

    /// Takes one flush: the counts since the previous one and the current
    /// values. Call from one thread (the VMM thread): two concurrent
    /// flushes would split the deltas between them.
    pub fn flush(&self) -> Flushed {
        let utc_timestamp_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Flushed {
            utc_timestamp_ms,
            groups: vec![
                ("api_server", self.api_server.take()),
                ("block", self.block.take()),
                ("get_api_requests", self.get_api_requests.take()),
                ("uart", self.uart.take()),
                ("logger", self.logger.take()),
                ("patch_api_requests", self.patch_api_requests.take()),
                ("put_api_requests", self.put_api_requests.take()),
                ("vcpu", self.vcpu.take()),
                ("entropy", self.entropy.take()),
                ("net", self.net.take()),
            ],
        }
    }
}

static PROCESS_START: OnceLock<Instant> = OnceLock::new();

/// Marks now as the process's start, for `api_server.process_startup_time_us`
/// (Firecracker takes it at the top of `main`). Call first thing in
/// `main`; later calls change nothing. Without it that value stays 0, as
/// Firecracker's does when it is not given a start time.
pub fn mark_process_start() {
    PROCESS_START.get_or_init(Instant::now);
}

/// Records how long the process took to be ready to serve (wall and CPU
/// time), in `api_server`.
pub fn record_startup() {
    if let Some(start) = PROCESS_START.get() {
        let us = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
        METRICS.api_server.process_startup_time_us.store(us);
    }
    METRICS
        .api_server
        .process_startup_time_cpu_us
        .store(process_cpu_time_us());
}

/// CPU time this process has used, all threads, in µs.
fn process_cpu_time_us() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the valid,
    // exclusively borrowed `ts`.
    if unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) } != 0 {
        return 0;
    }
    let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(ts.tv_nsec).unwrap_or(0);
    secs.saturating_mul(1_000_000).saturating_add(nanos / 1_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flush_has_firecrackers_groups_and_fields() {
        let m = Metrics::new();
        m.vcpu.exit_io_out.add(12);
        m.uart.write_count.add(12);
        m.block.read(4096);
        let flushed = m.flush();
        assert!(flushed.utc_timestamp_ms > 1_600_000_000_000);
        let v: serde_json::Value =
            serde_json::from_str(&serde_json::to_string(&flushed).expect("json")).expect("parse");
        for (group, fields) in [
            (
                "api_server",
                &["process_startup_time_us", "process_startup_time_cpu_us"][..],
            ),
            (
                "vcpu",
                &[
                    "exit_io_in",
                    "exit_io_out",
                    "exit_mmio_read",
                    "exit_mmio_write",
                    "failures",
                ],
            ),
            ("uart", &["read_count", "write_count", "missed_write_count"]),
            (
                "block",
                &[
                    "read_bytes",
                    "write_bytes",
                    "read_count",
                    "write_count",
                    "flush_count",
                ],
            ),
            (
                "entropy",
                &["entropy_event_count", "entropy_bytes", "host_rng_fails"],
            ),
            (
                "net",
                &[
                    "rx_bytes_count",
                    "rx_packets_count",
                    "rx_fails",
                    "tx_bytes_count",
                    "tx_packets_count",
                    "tx_fails",
                    "tx_malformed_frames",
                ],
            ),
            (
                "put_api_requests",
                &[
                    "actions_count",
                    "actions_fails",
                    "metrics_count",
                    "metrics_fails",
                ],
            ),
            (
                "get_api_requests",
                &[
                    "instance_info_count",
                    "machine_cfg_count",
                    "vmm_version_count",
                ],
            ),
            (
                "patch_api_requests",
                &["machine_cfg_count", "machine_cfg_fails"],
            ),
            ("logger", &["missed_metrics_count"]),
        ] {
            for field in fields {
                assert!(v[group][field].is_u64(), "{group}.{field} missing in {v}");
            }
        }
        assert_eq!(v["vcpu"]["exit_io_out"], 12);
        assert_eq!(v["uart"]["write_count"], 12);
        assert_eq!(v["block"]["read_bytes"], 4096);
        assert_eq!(v["block"]["read_count"], 1);
        // The next flush has only what happened since.
        m.vcpu.exit_io_out.inc();
        let next = m.flush();
        assert_eq!(next.value("vcpu", "exit_io_out"), Some(1));
        assert_eq!(next.value("uart", "write_count"), Some(0));
        assert_eq!(next.value("block", "read_bytes"), Some(0));
    }

    #[test]
    fn startup_cpu_time_is_measured() {
        // The CPU time of a test process that has run other tests is not
        // zero; the wall time needs mark_process_start, which the CLI calls.
        record_startup();
        assert!(METRICS.api_server.process_startup_time_cpu_us.fetch() > 0);
    }
}
