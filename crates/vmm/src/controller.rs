//! The VMM thread: owns the VM's configuration before boot and the running
//! VM after it, and is the only place where API requests are decided. The
//! API thread only translates HTTP into [`ApiRequest`]s and hands them
//! over a channel; the vCPU threads report how the guest ended over the
//! same channel. Once the VM runs, this thread installs its own seccomp
//! filter (as Firecracker's VMM thread does after boot).

use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::api::http::Response;
use crate::api::server::{ApiServer, ApiServerError, Handler};
use crate::api::{ActionType, ApiRequest, MachineConfigUpdate, VmState};
use crate::builder::{start_vm, VmEvent, VmmError};
use crate::config::file::{BootSource, LoggerConfig, MachineConfig, MetricsConfig};
use crate::config::{VmConfig, VmExitReason};
use crate::logger::Log;
use crate::metrics::api::RequestCounters;
use crate::metrics::{self, MetricsError, MetricsWriter, METRICS};
use crate::running::{outcome, RunningVm};
use crate::seccomp::{self, SeccompError, ThreadKind};
use crate::snapshot::{self, SnapshotError};

/// The application name in `GET /`.
pub const APP_NAME: &str = "vessel";
/// The VMM version in `GET /` and `GET /version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Firecracker's default instance id.
pub const DEFAULT_ID: &str = "anonymous-instance";

/// Errors of the VMM thread.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// The VM could not be built or started, or a vCPU failed.
    #[error(transparent)]
    Vmm(#[from] VmmError),
    /// The API socket.
    #[error(transparent)]
    Api(#[from] ApiServerError),
    /// The VMM thread's seccomp filter.
    #[error("Cannot confine the VMM thread")]
    Seccomp(#[source] SeccompError),
    /// Restoring a snapshot.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// The thread that waits for SIGTERM/SIGINT.
    #[error("Cannot set up the SIGTERM/SIGINT handling")]
    Signals(#[source] std::io::Error),
    /// The config's metrics file.
    #[error(transparent)]
    Metrics(#[from] MetricsError),
}

/// What [`Controller::run_with`] does before it serves the API.
#[derive(Debug, Clone)]
pub enum Start {
    /// Nothing: wait for `InstanceStart` or `PUT /snapshot/load`.
    Wait,
    /// Boot the configured kernel.
    Boot,
    /// Restore a snapshot (`--restore`).
    Restore {
        /// The state file.
        snapshot_path: PathBuf,
        /// The memory file.
        mem_file_path: PathBuf,
        /// Run the guest at once rather than leave it paused.
        resume: bool,
    },
}

/// How the controller runs.
#[derive(Debug, Clone)]
pub struct ControllerOptions {
    /// The instance id (`GET /`).
    pub id: String,
    /// Seccomp filters for every VMM thread.
    pub seccomp: bool,
    /// The API socket to serve, if any.
    pub api_socket: Option<PathBuf>,
    /// Hand KVM's destruction of the VM to a helper task when the guest
    /// ends ([`crate::teardown`]): for a VMM process that exits right after.
    pub async_teardown: bool,
}

enum Message {
    Api(ApiRequest, Sender<Response>),
    Vm(VmEvent),
    /// SIGTERM or SIGINT ([`Controller::stop_on_signals`]).
    Signal(i32),
}

/// The VMM thread's state.
pub struct Controller {
    options: ControllerOptions,
    /// What the VM will be (or is).
    config: VmConfig,
    /// The boot source as given; `None` until one is.
    boot_source: Option<BootSource>,
    machine: MachineConfig,
    /// Whether `PUT /machine-config` was accepted (a snapshot load is
    /// refused after boot-specific configuration, as in Firecracker).
    machine_configured: bool,
    logger: Option<LoggerConfig>,
    log: Log,
    /// Where metrics are flushed, once configured.
    metrics: Option<MetricsWriter>,
    /// When the next periodic flush is due (with `metrics`).
    metrics_due: Option<Instant>,
    /// Between periodic flushes ([`metrics::FLUSH_INTERVAL`]).
    metrics_interval: Duration,
    vm: Option<RunningVm>,
    started: Option<Instant>,
    /// Whether SIGTERM/SIGINT stop the VM ([`Controller::stop_on_signals`]).
    stop_on_signals: bool,
    /// The thread waiting for SIGTERM/SIGINT, once started.
    signals: Option<signals::SignalThread>,
    tx: Sender<Message>,
    rx: Receiver<Message>,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("id", &self.options.id)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

const NOT_AFTER_BOOT: &str = "The requested operation is not supported after starting the microVM.";
const NOT_BEFORE_BOOT: &str =
    "The requested operation is not supported before starting the microVM.";
const NO_METRICS: &str = "Cannot flush metrics: no metrics path is configured (PUT /metrics before InstanceStart, or `metrics.metrics_path` in the config file).";

impl Controller {
    /// A controller for `config`. `boot_source`: the kernel in `config` was
    /// given (a flag or a config file); without it the VM waits for
    /// `PUT /boot-source`. `log` is the VMM log so far.
    pub fn new(config: VmConfig, boot_source: bool, log: Log, options: ControllerOptions) -> Self {
        let (tx, rx) = channel();
        let boot_source = boot_source.then(|| BootSource {
            kernel_image_path: config.kernel.clone(),
            initrd_path: config.initrd.clone(),
            boot_args: Some(config.cmdline.clone()),
        });
        let machine = MachineConfig {
            vcpu_count: u64::from(config.vcpus),
            mem_size_mib: config.memory_mib,
            smt: false,
            cpu_template: None,
            track_dirty_pages: false,
            huge_pages: None,
        };
        let logger = log.path().map(|p| LoggerConfig {
            log_path: Some(p.to_owned()),
            level: Some(log.level()),
            show_level: false,
            show_log_origin: false,
            module: None,
        });
        Controller {
            options,
            config,
            boot_source,
            machine,
            machine_configured: false,
            logger,
            log,
            metrics: None,
            metrics_due: None,
            metrics_interval: metrics::FLUSH_INTERVAL,
            vm: None,
            started: None,
            stop_on_signals: false,
            signals: None,
            tx,
            rx,
        }
    }

    /// "Not started", "Running" or "Paused", as in Firecracker's `GET /`.
    pub fn state(&self) -> &'static str {
        match &self.vm {
            None => "Not started",
            Some(vm) if vm.is_paused() => "Paused",
            Some(_) => "Running",
        }
    }

    /// Serves the API (if configured), boots at once when `start_now`
    /// (otherwise on `InstanceStart`), and returns when the guest ends.
    /// Call on a thread the controller may confine: after boot it installs
    /// the VMM seccomp filter on the calling thread.
    pub fn run(self, start_now: bool) -> Result<VmExitReason, ControllerError> {
        self.run_with(if start_now { Start::Boot } else { Start::Wait })
    }

    /// Makes SIGTERM and SIGINT end [`Controller::run_with`] cleanly
    /// (vCPUs stopped, API socket removed) with [`VmExitReason::Signal`].
    /// For a process whose VMM thread is the one calling `run_with`.
    pub fn stop_on_signals(mut self) -> Self {
        self.stop_on_signals = true;
        self
    }

    /// [`Controller::run`], with a snapshot restore as a way to start.
    pub fn run_with(mut self, start: Start) -> Result<VmExitReason, ControllerError> {
        if self.stop_on_signals {
            // Before any other thread exists: they all inherit the mask.
            let tx = self.tx.clone();
            let thread = signals::start(self.options.seccomp, move |signal| {
                let _ = tx.send(Message::Signal(signal));
            })
            .map_err(ControllerError::Signals)?;
            self.signals = Some(thread);
        }
        if let Some(path) = self.config.metrics_path.clone() {
            if let Err(e) = self.open_metrics(&path) {
                self.log.error(&chain(&e));
                return Err(e.into());
            }
        }
        let api = match &self.options.api_socket {
            Some(path) => {
                let tx = self.tx.clone();
                let handler: Handler = Box::new(move |req| {
                    let (reply_tx, reply) = channel();
                    if tx.send(Message::Api(req, reply_tx)).is_err() {
                        return Response::fault(400, "The microVM is shutting down.");
                    }
                    reply
                        .recv()
                        .unwrap_or_else(|_| Response::fault(400, "The microVM is shutting down."))
                });
                let server = ApiServer::start(path, handler, self.options.seccomp)?;
                self.log
                    .info(&format!("API server listening on {}", path.display()));
                Some(server)
            }
            None => None,
        };
        let started = match start {
            Start::Wait => Ok(()),
            Start::Boot => self.start(),
            Start::Restore {
                snapshot_path,
                mem_file_path,
                resume,
            } => self.restore(&snapshot_path, &mem_file_path, resume),
        };
        if let Err(e) = started {
            self.log.error(&chain(&e));
            if let Some(api) = api {
                api.stop();
            }
            return Err(e);
        }
        metrics::record_startup();
        let result = self.event_loop();
        if let Some(vm) = self.vm.take() {
            if self.options.async_teardown {
                if let Err(e) = vm.stop_with_async_teardown() {
                    self.log.warn(&chain(&e));
                }
            } else {
                vm.stop();
            }
        }
        // As Firecracker: a last line on exit, with the vCPUs stopped so
        // that their counts are final.
        if let Err(e) = self.flush_metrics() {
            self.log.warn(&chain(&e));
        }
        if let Some(api) = api {
            api.stop();
        }
        result
    }

    fn event_loop(&mut self) -> Result<VmExitReason, ControllerError> {
        loop {
            // `self.tx` keeps the channel open.
            let received = match self.metrics_due {
                Some(due) => self
                    .rx
                    .recv_timeout(due.saturating_duration_since(Instant::now())),
                None => self.rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            let message = match received {
                Ok(message) => message,
                Err(RecvTimeoutError::Timeout) => {
                    if let Err(e) = self.flush_metrics() {
                        self.log.warn(&chain(&e));
                    }
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => return Ok(VmExitReason::Halted),
            };
            match message {
                Message::Api(req, reply) => {
                    let response = self.handle(req);
                    let _ = reply.send(response);
                }
                Message::Signal(signal) => {
                    self.log.info(&format!(
                        "stopping on signal {signal}: {}",
                        if self.vm.is_some() {
                            "stopping the vCPUs"
                        } else {
                            "nothing started"
                        }
                    ));
                    return Ok(VmExitReason::Signal(signal));
                }
                Message::Vm(event) => {
                    let Some(result) = outcome(event) else {
                        continue;
                    };
                    let elapsed = self.started.map(|s| s.elapsed()).unwrap_or_default();
                    match &result {
                        Ok(reason) if reason.is_clean() => self
                            .log
                            .info(&format!("guest ended: {} after {elapsed:?}", reason.name())),
                        Ok(reason) => self.log.error(&format!(
                            "guest ended abnormally: {} after {elapsed:?}",
                            reason.name()
                        )),
                        Err(e) => self.log.error(&chain(e)),
                    }
                    return result.map_err(ControllerError::Vmm);
                }
            }
        }
    }

    /// Boots the configured VM.
    fn start(&mut self) -> Result<(), ControllerError> {
        let c = &self.config;
        self.log.info(&format!(
            "starting microVM: kernel {}, initrd {}, {} vCPU(s), {} MiB, cmdline {:?}",
            c.kernel.display(),
            c.initrd
                .as_deref()
                .map_or("none".into(), |p| p.display().to_string()),
            c.vcpus,
            c.memory_mib,
            c.cmdline
        ));
        let mut config = self.config.clone();
        config.seccomp = self.options.seccomp;
        let tx = self.tx.clone();
        // `Sender` is Sync: every vCPU thread reports through one closure.
        let notify = Arc::new(move |e| {
            let _ = tx.send(Message::Vm(e));
        });
        self.started = Some(Instant::now());
        let vm = start_vm(&config, notify)?;
        self.vm = Some(vm);
        self.confine_vmm_threads()
    }

    /// Brings the VM back from a snapshot (paused unless `resume`).
    fn restore(&mut self, state: &Path, mem: &Path, resume: bool) -> Result<(), ControllerError> {
        self.log.info(&format!(
            "restoring microVM from snapshot {} (memory {})",
            state.display(),
            mem.display()
        ));
        let mut config = self.config.clone();
        config.seccomp = self.options.seccomp;
        let tx = self.tx.clone();
        let notify = Arc::new(move |e| {
            let _ = tx.send(Message::Vm(e));
        });
        self.started = Some(Instant::now());
        let vm = snapshot::load::restore(&config, state, mem, resume, notify)?;
        let (vcpus, mib) = vm.shape();
        self.config.vcpus = vcpus;
        self.config.memory_mib = mib;
        self.machine.vcpu_count = u64::from(vcpus);
        self.machine.mem_size_mib = mib;
        // GET and PATCH /balloon work from the configuration: the
        // snapshot's balloon becomes it.
        self.config.devices.balloon = vm.balloon().map(|b| b.config());
        self.vm = Some(vm);
        self.log.info(&format!(
            "microVM restored: {vcpus} vCPU(s), {mib} MiB, {}",
            self.state()
        ));
        self.confine_vmm_threads()
    }

    /// Once the guest runs: the VMM thread installs its filter, and the
    /// signal thread must have installed its own.
    fn confine_vmm_threads(&mut self) -> Result<(), ControllerError> {
        if self.options.seccomp {
            seccomp::install(ThreadKind::Vmm).map_err(ControllerError::Seccomp)?;
        }
        if let Some(signals) = &mut self.signals {
            signals.wait_confined().map_err(ControllerError::Signals)?;
        }
        Ok(())
    }

    /// Decides one API request.
    pub fn handle(&mut self, req: ApiRequest) -> Response {
        let counters = RequestCounters::arrived(&req);
        match self.decide(req) {
            Ok(Some(value)) => Response::json(&value),
            Ok(None) => Response::no_content(),
            Err(fault) => {
                counters.refused();
                self.log.warn(&format!("API request refused: {fault}"));
                Response::fault(400, &fault)
            }
        }
    }

    fn pre_boot(&self) -> Result<(), String> {
        match self.vm {
            None => Ok(()),
            Some(_) => Err(NOT_AFTER_BOOT.into()),
        }
    }

    fn running(&self) -> Result<&RunningVm, String> {
        self.vm.as_ref().ok_or_else(|| NOT_BEFORE_BOOT.into())
    }

    fn decide(&mut self, req: ApiRequest) -> Result<Option<Value>, String> {
        match req {
            ApiRequest::GetInstanceInfo => Ok(Some(json!({
                "id": self.options.id,
                "state": self.state(),
                "vmm_version": VERSION,
                "app_name": APP_NAME,
            }))),
            ApiRequest::GetVersion => Ok(Some(json!({ "firecracker_version": VERSION }))),
            ApiRequest::GetMachineConfig => Ok(Some(self.machine_json())),
            ApiRequest::GetVmConfig => Ok(Some(self.vm_config_json())),
            ApiRequest::PutBootSource(boot) => {
                self.pre_boot()?;
                self.set_boot_source(boot).map(|()| None)
            }
            ApiRequest::PutMachineConfig(m) => {
                self.pre_boot()?;
                self.set_machine(m).map(|()| None)
            }
            ApiRequest::PatchMachineConfig(update) => {
                self.pre_boot()?;
                self.set_machine(self.patched(update)).map(|()| None)
            }
            ApiRequest::PutLogger(logger) => {
                self.pre_boot()?;
                self.set_logger(logger).map(|()| None)
            }
            ApiRequest::Action(ActionType::InstanceStart) => {
                self.pre_boot()?;
                if self.boot_source.is_none() {
                    return Err(
                        "Cannot start the microVM without a kernel: PUT /boot-source first.".into(),
                    );
                }
                self.start()
                    .map(|()| None)
                    .map_err(|e| format!("Cannot start the microVM: {}", chain(&e)))
            }
            ApiRequest::Action(ActionType::SendCtrlAltDel) => {
                self.running()?.send_ctrl_alt_del();
                Ok(None)
            }
            ApiRequest::PutMetrics(m) => {
                self.pre_boot()?;
                self.set_metrics(&m).map(|()| None)
            }
            ApiRequest::Action(ActionType::FlushMetrics) => {
                // Firecracker's order: refused before boot whatever the
                // configuration.
                self.running()?;
                if self.metrics.is_none() {
                    return Err(NO_METRICS.into());
                }
                self.flush_metrics()
                    .map(|()| None)
                    .map_err(|e| format!("Cannot flush metrics: {}", chain(&e)))
            }
            ApiRequest::Device(req) => self.decide_device(req),
            ApiRequest::SetVmState(state) => {
                let vm = self.running()?;
                match state {
                    VmState::Paused => vm.pause(),
                    VmState::Resumed => vm.resume(),
                }
                self.log.info(&format!("microVM {}", self.state()));
                Ok(None)
            }
            ApiRequest::CreateSnapshot(p) => {
                p.check()?;
                let vm = self.running()?;
                vm.snapshot(&p.snapshot_path, &p.mem_file_path)
                    .map_err(|e| format!("Cannot create the snapshot: {}", chain(&e)))?;
                self.log.info(&format!(
                    "snapshot created: state {}, memory {}",
                    p.snapshot_path.display(),
                    p.mem_file_path.display()
                ));
                Ok(None)
            }
            ApiRequest::LoadSnapshot(p) => {
                self.pre_boot()?;
                if self.boot_source.is_some() || self.machine_configured {
                    return Err("Loading a microVM snapshot is not allowed after configuring boot-specific resources.".into());
                }
                let mem = p.mem_file()?.to_owned();
                self.restore(&p.snapshot_path, &mem, p.resume_vm)
                    .map(|()| None)
                    .map_err(|e| format!("Cannot load the snapshot: {}", chain(&e)))
            }
        }
    }

    fn set_boot_source(&mut self, boot: BootSource) -> Result<(), String> {
        let mut config = self.config.clone();
        boot.apply(&mut config).map_err(|e| chain(&e))?;
        // Refuse now what the boot would refuse later.
        let readable = |field: &str, path: &std::path::Path| {
            std::fs::File::open(path)
                .map(drop)
                .map_err(|e| format!("Invalid `{field}`: cannot open {}: {e}", path.display()))
        };
        readable("boot-source.kernel_image_path", &config.kernel)?;
        if let Some(initrd) = &config.initrd {
            readable("boot-source.initrd_path", initrd)?;
        }
        self.config = config;
        self.boot_source = Some(boot);
        Ok(())
    }

    fn set_machine(&mut self, m: MachineConfig) -> Result<(), String> {
        let mut config = self.config.clone();
        m.apply(&mut config).map_err(|e| chain(&e))?;
        self.config = config;
        self.machine = m;
        self.machine_configured = true;
        Ok(())
    }

    fn patched(&self, u: MachineConfigUpdate) -> MachineConfig {
        let old = &self.machine;
        MachineConfig {
            vcpu_count: u.vcpu_count.unwrap_or(old.vcpu_count),
            mem_size_mib: u.mem_size_mib.unwrap_or(old.mem_size_mib),
            smt: u.smt.unwrap_or(old.smt),
            cpu_template: u.cpu_template.or(old.cpu_template),
            track_dirty_pages: u.track_dirty_pages.unwrap_or(old.track_dirty_pages),
            huge_pages: u.huge_pages.or(old.huge_pages),
        }
    }

    /// `PUT /metrics`: opened now, so that a bad path is refused by name
    /// and nothing changes.
    fn set_metrics(&mut self, m: &MetricsConfig) -> Result<(), String> {
        if self.metrics.is_some() {
            // Firecracker's answer: the sink is set once.
            return Err("Reinitialization of metrics not allowed.".into());
        }
        self.open_metrics(&m.metrics_path)
            .map_err(|e| format!("Invalid `metrics_path`: {}", chain(&e)))?;
        self.config.metrics_path = Some(m.metrics_path.clone());
        Ok(())
    }

    fn open_metrics(&mut self, path: &Path) -> Result<(), MetricsError> {
        self.metrics = Some(MetricsWriter::open(path)?);
        self.metrics_due = Some(Instant::now() + self.metrics_interval);
        self.log
            .info(&format!("metrics flushed to {}", path.display()));
        Ok(())
    }

    /// Writes one metrics line, if a sink is configured, and schedules the
    /// next periodic flush. Runs on the VMM thread: the vCPUs only ever
    /// touch the counters' atomics, so a flush never waits for them nor
    /// they for it.
    fn flush_metrics(&mut self) -> Result<(), MetricsError> {
        let Some(writer) = &mut self.metrics else {
            return Ok(());
        };
        self.metrics_due = Some(Instant::now() + self.metrics_interval);
        writer.write(&METRICS.flush())
    }

    fn set_logger(&mut self, logger: LoggerConfig) -> Result<(), String> {
        if logger
            .log_path
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            return Err("Invalid `logger.log_path`: empty path".into());
        }
        let level = logger.level.unwrap_or(crate::config::file::LogLevel::Info);
        self.log = Log::open(logger.log_path.as_deref(), level).map_err(|e| chain(&e))?;
        self.logger = Some(logger);
        Ok(())
    }

    fn machine_json(&self) -> Value {
        let m = &self.machine;
        json!({
            "vcpu_count": m.vcpu_count,
            "mem_size_mib": m.mem_size_mib,
            "smt": m.smt,
            "track_dirty_pages": m.track_dirty_pages,
            "huge_pages": "None",
        })
    }

    /// The whole configuration in the config file's shape: what
    /// `--config-file` would need to build the same VM.
    fn vm_config_json(&self) -> Value {
        let boot = self.boot_source.as_ref().map(|b| {
            let mut v = json!({ "kernel_image_path": b.kernel_image_path });
            if let Some(initrd) = &b.initrd_path {
                v["initrd_path"] = json!(initrd);
            }
            v["boot_args"] = json!(self.config.cmdline);
            v
        });
        let logger = self.logger.as_ref().map(|l| {
            let mut v = json!({
                "level": l.level.unwrap_or(crate::config::file::LogLevel::Info).name(),
                "show_level": l.show_level,
                "show_log_origin": l.show_log_origin,
            });
            if let Some(p) = &l.log_path {
                v["log_path"] = json!(p);
            }
            if let Some(m) = &l.module {
                v["module"] = json!(m);
            }
            v
        });
        let devices = self.devices_json();
        json!({
            "boot-source": boot,
            "machine-config": self.machine_json(),
            "logger": logger,
            "drives": devices["drives"],
            "network-interfaces": devices["network-interfaces"],
            "pmem": [],
            "vsock": devices["vsock"],
            "balloon": devices["balloon"],
            "entropy": devices["entropy"],
            "metrics": self.config.metrics_path.as_ref().map(|p| json!({ "metrics_path": p })),
            "mmds-config": null,
            "cpu-config": null,
            "memory-hotplug": null,
            "serial": null,
        })
    }
}

mod devices;
mod signals;
#[cfg(test)]
mod tests;
