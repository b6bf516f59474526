//! Mounts, the read-only root, masked and read-only paths, devices, and
//! symlinks in the rootfs that try to redirect a mount out of it.

mod common;

use common::Ctx;
use serde_json::json;

/// (mount point, filesystem type) pairs of a mountinfo text.
fn mounts(mountinfo: &str) -> Vec<(String, String, String)> {
    mountinfo
        .lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let mut lf = left.split_whitespace();
            let point = lf.nth(4)?.to_owned();
            let opts = lf.next()?.to_owned();
            let fstype = right.split_whitespace().next()?.to_owned();
            Some((point, fstype, opts))
        })
        .collect()
}

fn find<'a>(m: &'a [(String, String, String)], point: &str) -> &'a (String, String, String) {
    m.iter()
        .rev()
        .find(|(p, _, _)| p == point)
        .unwrap_or_else(|| panic!("{point} is not a mount point: {m:?}"))
}

#[test]
fn default_mounts_are_present() {
    let ctx = Ctx::new("defmounts", &["cat", "/proc/self/mountinfo"]);
    let info = ctx.run_ok();
    let m = mounts(&info);
    assert_eq!(find(&m, "/proc").1, "proc");
    assert_eq!(find(&m, "/dev").1, "tmpfs");
    assert_eq!(find(&m, "/dev/pts").1, "devpts");
    assert_eq!(find(&m, "/dev/shm").1, "tmpfs");
    assert_eq!(find(&m, "/dev/mqueue").1, "mqueue");
    let sys = find(&m, "/sys");
    assert_eq!(sys.1, "sysfs");
    assert!(sys.2.split(',').any(|o| o == "ro"), "{sys:?}");
    assert_eq!(find(&m, "/sys/fs/cgroup").1, "tmpfs");
    let memory = find(&m, "/sys/fs/cgroup/memory");
    assert_eq!(memory.1, "cgroup");
    assert!(memory.2.split(',').any(|o| o == "ro"), "{memory:?}");
    assert_eq!(find(&m, "/sys/fs/cgroup/pids").1, "cgroup");
    // The root is the rootfs, not the host's.
    assert_eq!(find(&m, "/").0, "/");
    assert!(!info.contains(" /root/"), "host mounts leaked: {info}");
}

#[test]
fn bind_mounts_rw_and_ro() {
    let mut ctx = Ctx::new(
        "binds",
        &[
            "sh",
            "-c",
            "cat /rw/in; echo written > /rw/out; cat /ro/in; \
             echo nope > /ro/out 2>/dev/null && echo ro-writable || echo ro-refused",
        ],
    );
    let rw = ctx.path("rw");
    let ro = ctx.path("ro");
    std::fs::create_dir(&rw).unwrap();
    std::fs::create_dir(&ro).unwrap();
    std::fs::write(rw.join("in"), "rw-in\n").unwrap();
    std::fs::write(ro.join("in"), "ro-in\n").unwrap();
    let mounts = ctx.config["mounts"].as_array_mut().unwrap();
    mounts.push(
        json!({"destination": "/rw", "type": "bind", "source": rw, "options": ["rbind", "rw"]}),
    );
    mounts.push(
        json!({"destination": "/ro", "type": "bind", "source": ro, "options": ["rbind", "ro"]}),
    );
    assert_eq!(ctx.run_ok(), "rw-in\nro-in\nro-refused\n");
    assert_eq!(
        std::fs::read_to_string(rw.join("out")).unwrap(),
        "written\n"
    );
    assert!(!ro.join("out").exists());
}

#[test]
fn bind_mount_of_a_file() {
    let mut ctx = Ctx::new("bindfile", &["cat", "/etc/hostfile"]);
    let f = ctx.path("hostfile");
    std::fs::write(&f, "from the host\n").unwrap();
    ctx.config["mounts"].as_array_mut().unwrap().push(
        json!({"destination": "/etc/hostfile", "type": "bind", "source": f, "options": ["bind", "ro"]}),
    );
    assert_eq!(ctx.run_ok(), "from the host\n");
}

#[test]
fn tmpfs_with_options() {
    let mut ctx = Ctx::new(
        "tmpfs",
        &[
            "sh",
            "-c",
            "grep ' /scratch ' /proc/self/mountinfo; touch /scratch/x && echo ok",
        ],
    );
    ctx.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
        "options": ["nosuid", "nodev", "noexec", "size=1m", "mode=1777"]
    }));
    let out = ctx.run_ok();
    assert!(out.contains("tmpfs") && out.contains("size=1024k"), "{out}");
    assert!(out.contains("nosuid") && out.contains("noexec"), "{out}");
    assert!(out.ends_with("ok\n"), "{out}");
}

#[test]
fn readonly_root() {
    let mut ctx = Ctx::new(
        "roroot",
        &[
            "sh",
            "-c",
            "touch /newfile 2>&1 || true; touch /dev/shm/ok && echo shm-writable",
        ],
    );
    ctx.config["root"]["readonly"] = json!(true);
    let out = ctx.run_ok();
    assert!(out.contains("Read-only file system"), "{out}");
    assert!(out.contains("shm-writable"), "{out}");
    assert!(!ctx.rootfs().join("newfile").exists());
}

#[test]
fn masked_and_readonly_paths() {
    let mut ctx = Ctx::new(
        "masked",
        &[
            "sh",
            "-c",
            "wc -c < /proc/timer_list; ls /secret | wc -l; cat /secret-file | wc -c; \
             grep ' /proc/sys ' /proc/self/mountinfo; \
             echo x > /proc/sys/kernel/domainname 2>/dev/null && echo sys-writable || echo sys-refused",
        ],
    );
    // This kernel has no /proc/kcore; /proc/timer_list (in the default list) has content.
    assert!(!std::fs::read("/proc/timer_list").unwrap().is_empty());
    std::fs::create_dir(ctx.rootfs().join("secret")).unwrap();
    std::fs::write(ctx.rootfs().join("secret/key"), "k").unwrap();
    std::fs::write(ctx.rootfs().join("secret-file"), "k").unwrap();
    let masked = ctx.config["linux"]["maskedPaths"].as_array_mut().unwrap();
    masked.push(json!("/secret"));
    masked.push(json!("/secret-file"));
    let out = ctx.run_ok();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0].trim(), "0", "/proc/timer_list not masked: {out}");
    assert_eq!(lines[1].trim(), "0", "directory /secret not masked: {out}");
    assert_eq!(lines[2].trim(), "0", "file /secret-file not masked: {out}");
    let sys_opts = lines[3].split_whitespace().nth(5).unwrap();
    assert!(sys_opts.split(',').any(|o| o == "ro"), "{out}");
    assert_eq!(lines[4], "sys-refused", "{out}");
}

/// Sorted names in `dir`.
fn entries(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn symlink_out_of_the_rootfs_cannot_redirect_a_mount() {
    let mut ctx = Ctx::new(
        "symlinkescape",
        &[
            "sh",
            "-c",
            "cat /mnt/evil/secret; ls /mnt/evil; grep -c 'host-target-2/sub ' /proc/self/mountinfo",
        ],
    );
    // Host directories the image's symlinks point at.
    let host = ctx.path("host-target");
    let host2 = ctx.path("host-target-2");
    for h in [&host, &host2] {
        std::fs::create_dir(h).unwrap();
        std::fs::write(h.join("marker"), "host data\n").unwrap();
    }
    std::os::unix::fs::symlink(&host, ctx.rootfs().join("mnt/evil")).unwrap();
    let src = ctx.path("bind-src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("secret"), "bound\n").unwrap();
    ctx.config["mounts"].as_array_mut().unwrap().push(
        json!({"destination": "/mnt/evil", "type": "bind", "source": src, "options": ["rbind"]}),
    );
    // A relative symlink climbing out, then further components below it.
    std::os::unix::fs::symlink("../../../../../../..", ctx.rootfs().join("mnt/up")).unwrap();
    ctx.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": format!("/mnt/up{}/sub", host2.display()), "type": "tmpfs", "source": "tmpfs"
    }));
    let out = ctx.run();
    // Whatever the runtime does, the host directories must be untouched.
    for h in [&host, &host2] {
        assert_eq!(entries(h), ["marker"], "{} was written to", h.display());
        assert_eq!(
            std::fs::read_to_string(h.join("marker")).unwrap(),
            "host data\n"
        );
    }
    // Like runc, vessel resolves such symlinks inside the rootfs and creates
    // the mount points there.
    assert_eq!(out.status.code(), Some(0), "{}", common::describe(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "bound\nsecret\n1\n");
    let inside = ctx.rootfs().join(host.strip_prefix("/").unwrap());
    assert!(inside.is_dir(), "{} was not created", inside.display());
    let inside2 = ctx
        .rootfs()
        .join(host2.strip_prefix("/").unwrap())
        .join("sub");
    assert!(inside2.is_dir(), "{} was not created", inside2.display());
}

#[test]
fn default_devices() {
    let ctx = Ctx::new(
        "devices",
        &[
            "sh",
            "-c",
            "for d in null zero full random urandom tty; do \
             echo $d $(stat -c '%F %t:%T %a' /dev/$d); done; \
             echo hi > /dev/null && head -c 4 /dev/zero | wc -c",
        ],
    );
    let out = ctx.run_ok();
    for (name, devno) in [
        ("null", "1:3"),
        ("zero", "1:5"),
        ("full", "1:7"),
        ("random", "1:8"),
        ("urandom", "1:9"),
        ("tty", "5:0"),
    ] {
        let want = format!("{name} character special file {devno} 666");
        assert!(out.lines().any(|l| l == want), "{want:?} not in:\n{out}");
    }
    assert!(out.ends_with("4\n"), "{out}");
}

#[test]
fn extra_device_from_config() {
    let mut ctx = Ctx::new(
        "extradev",
        &["stat", "-c", "%F %t:%T %a %u:%g", "/dev/mydev"],
    );
    ctx.config["linux"]["devices"] = json!([{
        "path": "/dev/mydev", "type": "c", "major": 1, "minor": 7,
        "fileMode": 0o640, "uid": 1000, "gid": 1001
    }]);
    assert_eq!(ctx.run_ok(), "character special file 1:7 640 1000:1001\n");
}

#[test]
fn devpts_and_ptmx_symlink() {
    let ctx = Ctx::new(
        "ptmx",
        &[
            "sh",
            "-c",
            "readlink /dev/ptmx; ls -d /dev/pts; readlink /dev/fd; stat -c %F /dev/pts/ptmx",
        ],
    );
    assert_eq!(
        ctx.run_ok(),
        "pts/ptmx\n/dev/pts\n/proc/self/fd\ncharacter special file\n"
    );
}

#[test]
fn mounts_do_not_leak_to_the_host() {
    let ctx = Ctx::new("noleak", &["sleep", "1000"]);
    ctx.start_ok();
    let host = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let rootfs = ctx.rootfs();
    assert!(
        !host.contains(rootfs.to_str().unwrap()),
        "container mounts visible on the host:\n{host}"
    );
}

#[test]
fn no_pivot_root() {
    let ctx = Ctx::new("nopivot", &["sh", "-c", "cat /etc/passwd | head -1; ls /"]);
    ctx.write_config();
    let bundle = ctx.bundle.to_str().unwrap();
    let out = ctx.rt(&["run", "--no-pivot", "--bundle", bundle, ctx.id()]);
    assert_eq!(out.status.code(), Some(0), "{}", common::describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with("root:x:0:0:root:/root:/bin/sh\n"),
        "{stdout}"
    );
    // The rootfs's own top level, not the host's.
    assert!(
        !stdout.lines().any(|l| l == "usr" || l == "boot"),
        "{stdout}"
    );
}
