//! `update`: resources from a JSON file or from runc's flags.

use std::io::Read;

use anyhow::Context;
use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxPids, LinuxResources};

use crate::args::UpdateArgs;

/// Parse "100", "64k", "512m", "2g", "-1" into bytes.
pub fn parse_size(s: &str) -> anyhow::Result<i64> {
    let t = s.trim().to_ascii_lowercase();
    if t == "-1" {
        return Ok(-1);
    }
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: i64 = num.parse().with_context(|| format!("invalid size {s:?}"))?;
    n.checked_mul(mult)
        .with_context(|| format!("size {s:?} is too large"))
}

/// Build the resources to apply.
pub fn resources(a: &UpdateArgs) -> anyhow::Result<LinuxResources> {
    if let Some(path) = &a.resources {
        let mut data = Vec::new();
        if path.as_os_str() == "-" {
            std::io::stdin().read_to_end(&mut data)?;
        } else {
            data =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        }
        let de = &mut serde_json::Deserializer::from_slice(&data);
        return serde_path_to_error_free(de)
            .with_context(|| format!("invalid resources JSON {}", path.display()));
    }
    let mut r = LinuxResources::default();
    if a.memory.is_some() || a.memory_reservation.is_some() || a.memory_swap.is_some() {
        let mut m = LinuxMemory::default();
        m.set_limit(
            a.memory
                .as_deref()
                .map(parse_size)
                .transpose()
                .context("--memory")?,
        );
        m.set_reservation(
            a.memory_reservation
                .as_deref()
                .map(parse_size)
                .transpose()
                .context("--memory-reservation")?,
        );
        m.set_swap(
            a.memory_swap
                .as_deref()
                .map(parse_size)
                .transpose()
                .context("--memory-swap")?,
        );
        r.set_memory(Some(m));
    }
    if a.cpu_shares.is_some()
        || a.cpu_quota.is_some()
        || a.cpu_period.is_some()
        || a.cpuset_cpus.is_some()
        || a.cpuset_mems.is_some()
        || a.cpu_rt_period.is_some()
        || a.cpu_rt_runtime.is_some()
    {
        let mut c = LinuxCpu::default();
        c.set_shares(a.cpu_shares);
        c.set_quota(a.cpu_quota);
        c.set_period(a.cpu_period);
        c.set_realtime_period(a.cpu_rt_period);
        c.set_realtime_runtime(a.cpu_rt_runtime);
        c.set_cpus(a.cpuset_cpus.clone());
        c.set_mems(a.cpuset_mems.clone());
        r.set_cpu(Some(c));
    }
    if let Some(limit) = a.pids_limit {
        let mut p = LinuxPids::default();
        p.set_limit(limit);
        r.set_pids(Some(p));
    }
    if let Some(w) = a.blkio_weight {
        let mut b = LinuxBlockIo::default();
        b.set_weight(Some(w));
        r.set_block_io(Some(b));
    }
    Ok(r)
}

fn serde_path_to_error_free(
    de: &mut serde_json::Deserializer<serde_json::de::SliceRead<'_>>,
) -> anyhow::Result<LinuxResources> {
    use serde::Deserialize;
    Ok(LinuxResources::deserialize(de)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("100").unwrap(), 100);
        assert_eq!(parse_size("64k").unwrap(), 65536);
        assert_eq!(parse_size("32M").unwrap(), 32 << 20);
        assert_eq!(parse_size("1g").unwrap(), 1 << 30);
        assert_eq!(parse_size("-1").unwrap(), -1);
        assert!(parse_size("lots").is_err());
        assert!(parse_size("99999999999t").is_err());
    }
}
