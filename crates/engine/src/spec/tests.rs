//! Each option of a container's config, and each default, as it lands in the spec.

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use super::user::ResolvedUser;
use super::*;
use crate::record::Limits;

const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn cfg() -> ContainerConfig {
    ContainerConfig {
        cmd: vec!["/bin/sh".into(), "-c".into(), "echo hi".into()],
        env: vec!["A=1".into()],
        working_dir: "/work".into(),
        hostname: "box".into(),
        ..Default::default()
    }
}

fn root() -> ResolvedUser {
    ResolvedUser {
        uid: 0,
        gid: 0,
        additional_gids: vec![],
        home: "/root".into(),
    }
}

fn gen(c: &ContainerConfig) -> Spec {
    generate(ID, c, &root(), None).unwrap()
}

fn caps_of(s: &Spec) -> Vec<String> {
    let c = s
        .process()
        .as_ref()
        .unwrap()
        .capabilities()
        .as_ref()
        .unwrap();
    let mut v: Vec<String> = c
        .bounding()
        .as_ref()
        .unwrap()
        .iter()
        .map(|c| format!("CAP_{c}"))
        .collect();
    v.sort();
    v
}

fn namespaces(s: &Spec) -> Vec<LinuxNamespaceType> {
    let l = s.linux().as_ref().unwrap();
    l.namespaces()
        .as_ref()
        .unwrap()
        .iter()
        .map(|n| n.typ())
        .collect()
}

fn mount_options(s: &Spec, dest: &str) -> Vec<String> {
    let m = s
        .mounts()
        .as_ref()
        .unwrap()
        .iter()
        .find(|m| m.destination().to_str() == Some(dest));
    m.unwrap().options().clone().unwrap()
}

#[test]
fn process_fields() {
    let s = gen(&cfg());
    let p = s.process().as_ref().unwrap();
    assert_eq!(p.args().as_ref().unwrap(), &["/bin/sh", "-c", "echo hi"]);
    assert_eq!(p.cwd().to_str(), Some("/work"));
    let env = p.env().as_ref().unwrap();
    assert_eq!(
        env[0], DEFAULT_PATH,
        "PATH is added when the image has none"
    );
    assert!(env.contains(&"HOSTNAME=box".to_string()));
    assert!(env.contains(&"A=1".to_string()));
    assert!(env.contains(&"HOME=/root".to_string()));
    assert_eq!(s.hostname().as_deref(), Some("box"));
    assert!(!p.terminal().unwrap_or(false));
}

#[test]
fn image_path_and_home_are_kept() {
    let mut c = cfg();
    c.env = vec!["PATH=/opt/bin".into(), "HOME=/h".into()];
    let s = gen(&c);
    let env = s.process().as_ref().unwrap().env().clone().unwrap();
    assert_eq!(env.iter().filter(|e| e.starts_with("PATH=")).count(), 1);
    assert!(env.contains(&"PATH=/opt/bin".to_string()));
    assert!(env.contains(&"HOME=/h".to_string()));
}

#[test]
fn user_ids_and_groups() {
    let u = ResolvedUser {
        uid: 33,
        gid: 44,
        additional_gids: vec![29],
        home: "/var/www".into(),
    };
    let s = generate(ID, &cfg(), &u, None).unwrap();
    let pu = s.process().as_ref().unwrap().user();
    assert_eq!((pu.uid(), pu.gid()), (33, 44));
    assert_eq!(pu.additional_gids().as_deref(), Some(&[29][..]));
}

#[test]
fn default_capabilities_are_dockers() {
    let s = gen(&cfg());
    let mut want: Vec<String> = caps::DEFAULT.iter().map(|c| c.to_string()).collect();
    want.sort();
    assert_eq!(caps_of(&s), want);
    let c = s
        .process()
        .as_ref()
        .unwrap()
        .capabilities()
        .as_ref()
        .unwrap();
    assert_eq!(c.effective(), c.bounding());
    assert_eq!(c.permitted(), c.bounding());
    assert!(c.inheritable().as_ref().is_none_or(|i| i.is_empty()));
}

#[test]
fn cap_add_and_drop() {
    let mut c = cfg();
    c.cap_add = vec!["CAP_NET_ADMIN".into()];
    c.cap_drop = vec!["CAP_CHOWN".into()];
    let got = caps_of(&gen(&c));
    assert!(got.contains(&"CAP_NET_ADMIN".to_string()));
    assert!(!got.contains(&"CAP_CHOWN".to_string()));
}

#[test]
fn secure_defaults() {
    let s = gen(&cfg());
    let l = s.linux().as_ref().unwrap();
    let masked = l.masked_paths().as_ref().unwrap();
    assert!(masked.contains(&"/proc/kcore".to_string()));
    assert!(masked.contains(&"/sys/firmware".to_string()));
    assert!(l
        .readonly_paths()
        .as_ref()
        .unwrap()
        .contains(&"/proc/sys".to_string()));
    assert!(l.seccomp().is_some());
    assert!(mount_options(&s, "/sys").contains(&"ro".to_string()));
    assert!(mount_options(&s, "/sys/fs/cgroup").contains(&"ro".to_string()));
    let dests: Vec<_> = s
        .mounts()
        .as_ref()
        .unwrap()
        .iter()
        .map(|m| m.destination().clone())
        .collect();
    for d in [
        "/proc",
        "/dev",
        "/dev/pts",
        "/dev/shm",
        "/dev/mqueue",
        "/sys",
        "/sys/fs/cgroup",
    ] {
        assert!(dests.iter().any(|x| x.to_str() == Some(d)), "{d}");
    }
    let dev = &l.resources().as_ref().unwrap().devices().as_ref().unwrap()[0];
    assert!(!dev.allow(), "devices: deny all first");
    assert_eq!(
        l.cgroups_path().as_ref().unwrap().to_str(),
        Some(&*cgroup_path(ID))
    );
    assert!(!s.root().as_ref().unwrap().readonly().unwrap_or(false));
}

#[test]
fn namespaces_and_network() {
    use LinuxNamespaceType::*;
    let s = gen(&cfg());
    for ns in [Pid, Ipc, Uts, Mount, Network, Cgroup] {
        assert!(namespaces(&s).contains(&ns), "{ns:?}");
    }
    let sysctl = s.linux().as_ref().unwrap().sysctl().clone().unwrap();
    assert_eq!(sysctl["net.ipv4.ip_unprivileged_port_start"], "0");
    let mut c = cfg();
    c.network = NetworkMode::Host;
    let s = gen(&c);
    assert!(!namespaces(&s).contains(&Network));
    assert!(s
        .linux()
        .as_ref()
        .unwrap()
        .sysctl()
        .as_ref()
        .is_none_or(|m| m.is_empty()));
}

#[test]
fn read_only_root() {
    let mut c = cfg();
    c.read_only = true;
    assert_eq!(gen(&c).root().as_ref().unwrap().readonly(), Some(true));
}

#[test]
fn privileged_lifts_the_confinement() {
    let mut c = cfg();
    c.privileged = true;
    let s = gen(&c);
    // Every capability the host can grant.
    assert_eq!(caps_of(&s).len(), caps::host_bounding().unwrap().len());
    let l = s.linux().as_ref().unwrap();
    assert!(l.seccomp().is_none());
    assert!(l.masked_paths().as_ref().is_none_or(|m| m.is_empty()));
    assert!(l.readonly_paths().as_ref().is_none_or(|m| m.is_empty()));
    assert!(mount_options(&s, "/sys").contains(&"rw".to_string()));
    assert!(l.resources().as_ref().unwrap().devices().as_ref().unwrap()[0].allow());
}

#[test]
fn limits() {
    let mut c = cfg();
    c.limits = Limits {
        memory: Some(64 << 20),
        memory_swap: None,
        nano_cpus: Some(1_500_000_000),
        pids_limit: Some(100),
    };
    let s = gen(&c);
    let r = s.linux().as_ref().unwrap().resources().clone().unwrap();
    let m = r.memory().as_ref().unwrap();
    assert_eq!(m.limit(), Some(64 << 20));
    assert_eq!(m.swap(), Some(128 << 20), "docker: as much swap as memory");
    let cpu = r.cpu().as_ref().unwrap();
    assert_eq!((cpu.quota(), cpu.period()), (Some(150_000), Some(100_000)));
    assert_eq!(r.pids().as_ref().unwrap().limit(), 100);

    c.limits.memory_swap = Some(-1);
    let s = gen(&c);
    let r = s.linux().as_ref().unwrap().resources().clone().unwrap();
    assert_eq!(r.memory().as_ref().unwrap().swap(), Some(-1));
}

#[test]
fn the_spec_passes_the_runtimes_validation() {
    let s = gen(&cfg());
    vessel_runtime::bundle::validate(&s).unwrap();
    let bytes = serde_json::to_vec(&s).unwrap();
    vessel_runtime::bundle::parse_config(&bytes).unwrap();
}
