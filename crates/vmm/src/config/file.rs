//! The `--config-file` format: Firecracker's JSON, for the parts vessel
//! implements. A file written for Firecracker that boots a kernel (and an
//! initrd) starts vessel unchanged.
//!
//! The file is untrusted input. Every error names the field the way
//! Firecracker does (`machine-config.vcpu_count`), unknown fields are
//! rejected (serde's "unknown field `x`, expected one of …"), and sections
//! vessel does not have yet (`pmem`, `mmds-config`, …) are
//! accepted only when empty or `null`, so that a config is never half
//! applied. The device sections (`drives`, `network-interfaces`, `vsock`,
//! `entropy`, `balloon`) are [`super::devices`]' types.

use std::io::Read;
use std::path::{Path, PathBuf};

use linux_loader::cmdline::Cmdline;
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};

use super::devices::{
    BalloonConfig, DeviceConfigError, DevicesConfig, DriveConfig, EntropyConfig, NetConfig,
    VsockConfig,
};
use super::{VmConfig, DEFAULT_CMDLINE, MAX_MEM_MIB, MAX_VCPUS, MIN_MEM_MIB};
use crate::arch::x86_64::layout::CMDLINE_MAX_SIZE;

/// Largest config file read (Firecracker's own limit for API bodies is 50 KiB;
/// a config file with every section fits well below 1 MiB).
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Errors reading or applying a config file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("Cannot read the VM config file {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_CONFIG_BYTES`].
    #[error("The VM config file {} is larger than the {MAX_CONFIG_BYTES} bytes accepted", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// Not JSON, or not the right shape: wrong type, unknown or missing field.
    #[error("Invalid VM config at `{field}`: {message}")]
    Parse {
        /// JSON path of the offending value (`machine-config.vcpu_count`).
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// A value of the right type that vessel cannot accept.
    #[error("Invalid VM config at `{field}`: {reason}")]
    Invalid {
        /// JSON path of the offending value.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A device section.
    #[error(transparent)]
    Device(#[from] DeviceConfigError),
    /// A section or value for something vessel does not implement yet.
    #[error("Invalid VM config at `{field}`: {what} not supported by vessel yet ({accepted})")]
    Unsupported {
        /// JSON path of the section or value.
        field: &'static str,
        /// What it asks for.
        what: &'static str,
        /// What vessel accepts there today.
        accepted: &'static str,
    },
}

/// A Firecracker-format VM config file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `boot-source` (required, as in Firecracker).
    #[serde(rename = "boot-source")]
    pub boot_source: BootSource,
    /// `machine-config` (Firecracker's defaults when absent: 1 vCPU, 128 MiB).
    #[serde(rename = "machine-config", default)]
    pub machine_config: Option<MachineConfig>,
    /// `logger`.
    #[serde(default)]
    pub logger: Option<LoggerConfig>,
    /// `drives`: block devices.
    #[serde(default)]
    pub drives: Option<Vec<DriveConfig>>,
    /// `network-interfaces`: virtio-net on taps.
    #[serde(rename = "network-interfaces", default)]
    pub network_interfaces: Option<Vec<NetConfig>>,
    #[serde(default)]
    pmem: Option<Vec<IgnoredAny>>,
    /// `vsock`.
    #[serde(default)]
    pub vsock: Option<VsockConfig>,
    /// `balloon`.
    #[serde(default)]
    pub balloon: Option<BalloonConfig>,
    /// `entropy`.
    #[serde(default)]
    pub entropy: Option<EntropyConfig>,
    /// `metrics`: where flushed metrics go.
    #[serde(default)]
    pub metrics: Option<MetricsConfig>,
    #[serde(rename = "mmds-config", default)]
    mmds_config: Option<IgnoredAny>,
    #[serde(rename = "cpu-config", default)]
    cpu_config: Option<IgnoredAny>,
    #[serde(rename = "memory-hotplug", default)]
    memory_hotplug: Option<IgnoredAny>,
    #[serde(default)]
    serial: Option<IgnoredAny>,
}

/// `boot-source`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootSource {
    /// ELF vmlinux or bzImage.
    pub kernel_image_path: PathBuf,
    /// Optional initrd.
    #[serde(default)]
    pub initrd_path: Option<PathBuf>,
    /// Kernel command line; vessel's [`DEFAULT_CMDLINE`] when absent.
    /// (Firecracker's default has `8250.nr_uarts=0`, which would silence
    /// vessel's only console.)
    #[serde(default)]
    pub boot_args: Option<String>,
}

/// `machine-config`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MachineConfig {
    /// vCPUs, 1..=[`MAX_VCPUS`]. Read as u64 so that 1000 gets a range
    /// error rather than a type error.
    pub vcpu_count: u64,
    /// Guest memory, [`MIN_MEM_MIB`]..=[`MAX_MEM_MIB`].
    pub mem_size_mib: u64,
    /// Simultaneous multithreading: only `false` for now.
    #[serde(default)]
    pub smt: bool,
    /// Static CPU template: only `"None"` for now.
    #[serde(default)]
    pub cpu_template: Option<CpuTemplate>,
    /// Dirty page tracking: accepted, no effect until snapshots exist.
    #[serde(default)]
    pub track_dirty_pages: bool,
    /// Huge pages: only `"None"` for now.
    #[serde(default)]
    pub huge_pages: Option<HugePages>,
}

/// Firecracker's static CPU templates.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum CpuTemplate {
    C3,
    T2,
    T2S,
    T2CL,
    T2A,
    V1N1,
    None,
}

/// Firecracker's guest memory page sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum HugePages {
    /// 4 KiB pages.
    None,
    /// 2 MiB hugetlbfs pages.
    #[serde(rename = "2M")]
    Hugetlbfs2M,
}

/// `logger`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoggerConfig {
    /// Where the VMM log goes (the CLI's `--log`).
    #[serde(default)]
    pub log_path: Option<PathBuf>,
    /// Level, case-insensitive as in Firecracker.
    #[serde(default, deserialize_with = "level")]
    pub level: Option<LogLevel>,
    /// Accepted for compatibility; vessel always writes the level.
    #[serde(default)]
    pub show_level: bool,
    /// Accepted for compatibility; vessel's log lines have no origin.
    #[serde(default)]
    pub show_log_origin: bool,
    /// Accepted for compatibility; vessel has one log module.
    #[serde(default)]
    pub module: Option<String>,
}

/// `metrics` (and the body of `PUT /metrics`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// A file or named pipe, opened for appending one JSON line per flush.
    pub metrics_path: PathBuf,
}

/// Log levels, most to least severe.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Off,
    Error,
    Warning,
    Info,
    Debug,
    Trace,
}

fn level<'de, D: Deserializer<'de>>(de: D) -> Result<Option<LogLevel>, D::Error> {
    let Some(s) = Option::<String>::deserialize(de)? else {
        return Ok(None);
    };
    let level = match s.to_ascii_lowercase().as_str() {
        "off" => LogLevel::Off,
        "error" => LogLevel::Error,
        "warning" | "warn" => LogLevel::Warning,
        "info" => LogLevel::Info,
        "debug" => LogLevel::Debug,
        "trace" => LogLevel::Trace,
        _ => {
            return Err(serde::de::Error::custom(format!(
                "unknown variant `{s}`, expected one of `Off`, `Error`, `Warning`, `Info`, `Debug`, `Trace`"
            )))
        }
    };
    Ok(Some(level))
}

/// Parses config bytes; the error names the JSON path of what is wrong.
pub fn parse(data: &[u8]) -> Result<FileConfig, ConfigError> {
    let de = &mut serde_json::Deserializer::from_slice(data);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = match e.path().to_string() {
            p if p == "." => "(top level)".to_owned(),
            p => p,
        };
        ConfigError::Parse {
            field,
            message: e.into_inner().to_string(),
        }
    })
}

/// Reads and parses a config file (at most [`MAX_CONFIG_BYTES`]).
pub fn load(path: &Path) -> Result<FileConfig, ConfigError> {
    let read_err = |source| ConfigError::Read {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let mut data = Vec::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut data)
        .map_err(read_err)?;
    if data.len() as u64 > MAX_CONFIG_BYTES {
        return Err(ConfigError::TooLarge {
            path: path.to_owned(),
        });
    }
    parse(&data)
}

impl FileConfig {
    /// Checks every value and builds the [`VmConfig`] (console and other
    /// host-side settings at their defaults, for the caller to set).
    pub fn to_vm_config(&self) -> Result<VmConfig, ConfigError> {
        self.check_unsupported()?;
        let mut config = VmConfig::new("");
        self.boot_source.apply(&mut config)?;
        if let Some(m) = &self.machine_config {
            m.apply(&mut config)?;
        }
        if let Some(path) = self.logger.as_ref().and_then(|l| l.log_path.as_ref()) {
            if path.as_os_str().is_empty() {
                return Err(invalid("logger.log_path", "empty path"));
            }
        }
        if let Some(m) = &self.metrics {
            if m.metrics_path.as_os_str().is_empty() {
                return Err(invalid("metrics.metrics_path", "empty path"));
            }
            config.metrics_path = Some(m.metrics_path.clone());
        }
        config.devices = self.devices();
        config.devices.check(config.memory_mib)?;
        Ok(config)
    }

    /// The device sections (the root drive first, as Firecracker orders
    /// drives).
    pub fn devices(&self) -> DevicesConfig {
        let mut drives = self.drives.clone().unwrap_or_default();
        drives.sort_by_key(|d| !d.is_root_device);
        DevicesConfig {
            drives,
            net: self.network_interfaces.clone().unwrap_or_default(),
            vsock: self.vsock.clone(),
            entropy: self.entropy.clone(),
            balloon: self.balloon.clone(),
            ..DevicesConfig::default()
        }
    }

    fn check_unsupported(&self) -> Result<(), ConfigError> {
        const EMPTY_LIST: &str = "only an empty list is accepted";
        const NULL: &str = "only null is accepted";
        let lists = [("pmem", "pmem devices are", self.pmem.as_ref().map(Vec::len))];
        for (field, what, len) in lists {
            if len.is_some_and(|n| n > 0) {
                return Err(unsupported(field, what, EMPTY_LIST));
            }
        }
        let sections = [
            ("mmds-config", "the MMDS is", &self.mmds_config),
            ("cpu-config", "custom CPU templates are", &self.cpu_config),
            ("memory-hotplug", "memory hotplug is", &self.memory_hotplug),
            ("serial", "serial configuration is", &self.serial),
        ];
        for (field, what, section) in sections {
            if section.is_some() {
                return Err(unsupported(field, what, NULL));
            }
        }
        Ok(())
    }

    /// The log file the config asks for, if any.
    pub fn log_path(&self) -> Option<&Path> {
        self.logger.as_ref()?.log_path.as_deref()
    }

    /// The log level the config asks for, if any.
    pub fn log_level(&self) -> Option<LogLevel> {
        self.logger.as_ref()?.level
    }
}

impl BootSource {
    /// Checks the values and sets kernel, initrd and command line in
    /// `config` (vessel's default command line without `boot_args`).
    pub fn apply(&self, config: &mut VmConfig) -> Result<(), ConfigError> {
        if self.kernel_image_path.as_os_str().is_empty() {
            return Err(invalid("boot-source.kernel_image_path", "empty path"));
        }
        if self
            .initrd_path
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            return Err(invalid("boot-source.initrd_path", "empty path"));
        }
        let cmdline = match &self.boot_args {
            Some(args) => {
                check_cmdline(args).map_err(|reason| invalid("boot-source.boot_args", reason))?;
                args.clone()
            }
            None => DEFAULT_CMDLINE.to_owned(),
        };
        config.kernel = self.kernel_image_path.clone();
        config.initrd = self.initrd_path.clone();
        config.cmdline = cmdline;
        Ok(())
    }
}

impl MachineConfig {
    /// Checks the values and sets vCPUs and memory in `config`; refuses
    /// what vessel does not support yet (SMT, CPU templates, huge pages).
    pub fn apply(&self, config: &mut VmConfig) -> Result<(), ConfigError> {
        let vcpus =
            check_vcpus(self.vcpu_count).map_err(|r| invalid("machine-config.vcpu_count", r))?;
        let memory = check_memory(self.mem_size_mib)
            .map_err(|r| invalid("machine-config.mem_size_mib", r))?;
        if self.smt {
            return Err(unsupported(
                "machine-config.smt",
                "simultaneous multithreading is",
                "false: each vCPU is a core of its own",
            ));
        }
        if self.cpu_template.is_some_and(|t| t != CpuTemplate::None) {
            return Err(unsupported(
                "machine-config.cpu_template",
                "CPU templates are",
                "\"None\" or absent",
            ));
        }
        if self.huge_pages == Some(HugePages::Hugetlbfs2M) {
            return Err(unsupported(
                "machine-config.huge_pages",
                "huge pages are",
                "\"None\" or absent",
            ));
        }
        config.vcpus = vcpus;
        config.memory_mib = memory;
        Ok(())
    }
}

impl LogLevel {
    /// The level as Firecracker spells it.
    pub fn name(self) -> &'static str {
        match self {
            LogLevel::Off => "Off",
            LogLevel::Error => "Error",
            LogLevel::Warning => "Warning",
            LogLevel::Info => "Info",
            LogLevel::Debug => "Debug",
            LogLevel::Trace => "Trace",
        }
    }
}

fn invalid(field: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field,
        reason: reason.into(),
    }
}

fn unsupported(field: &'static str, what: &'static str, accepted: &'static str) -> ConfigError {
    ConfigError::Unsupported {
        field,
        what,
        accepted,
    }
}

/// A vCPU count vessel accepts: 1..=[`MAX_VCPUS`].
pub fn check_vcpus(n: u64) -> Result<u8, String> {
    u8::try_from(n)
        .ok()
        .filter(|n| (1..=MAX_VCPUS).contains(n))
        .ok_or_else(|| format!("{n} vCPUs asked for, a microVM has 1 to {MAX_VCPUS}"))
}

/// A memory size vessel accepts: [`MIN_MEM_MIB`]..=[`MAX_MEM_MIB`] MiB.
pub fn check_memory(mib: u64) -> Result<u64, String> {
    if (MIN_MEM_MIB..=MAX_MEM_MIB).contains(&mib) {
        Ok(mib)
    } else {
        Err(format!(
            "{mib} MiB asked for, guest memory is {MIN_MEM_MIB} to {MAX_MEM_MIB} MiB"
        ))
    }
}

/// A kernel command line the loader accepts (printable ASCII, shorter than
/// the boot protocol's limit).
pub fn check_cmdline(s: &str) -> Result<(), String> {
    if let Some(c) = s.chars().find(|c| !matches!(c, ' '..='~')) {
        return Err(format!(
            "not a valid kernel command line: {c:?} is not printable ASCII"
        ));
    }
    Cmdline::try_from(s, CMDLINE_MAX_SIZE)
        .map(drop)
        .map_err(|e| format!("not a valid kernel command line: {e}"))
}

#[cfg(test)]
mod tests;
