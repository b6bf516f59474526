//! A busybox root filesystem as a tar layer, made from the host's static
//! busybox (the `busybox-static` package): what the engine and build tests
//! run their containers on without a registry.

use crate::Tarball;

/// Which applet links the root filesystem gets.
#[derive(Debug, Clone, Copy)]
pub enum Applets<'a> {
    /// Every applet `busybox --list` names.
    All,
    /// Only these (a smaller layer, for tests that load it often).
    Only(&'a [&'a str]),
}

/// A busybox root filesystem: /bin/busybox and its applet links, /tmp
/// (1777), /var/www, and /etc/passwd and /etc/group with root and `www`
/// (uid and gid 33, also a member of `audio`, 29).
pub fn busybox_rootfs(applets: Applets<'_>) -> Vec<u8> {
    let busybox = std::fs::read("/bin/busybox")
        .expect("/bin/busybox is missing: install busybox-static (scripts/install-deps.sh)");
    let mut t = Tarball::new();
    for d in ["bin", "etc", "var", "var/www"] {
        t.dir(d, 0o755);
    }
    t.dir("tmp", 0o1777);
    t.file("bin/busybox", 0o755, &busybox);
    let listed;
    let names: Vec<&str> = match applets {
        Applets::All => {
            let out = std::process::Command::new("/bin/busybox")
                .arg("--list")
                .output()
                .expect("run busybox --list");
            assert!(out.status.success(), "busybox --list failed");
            listed = String::from_utf8(out.stdout).expect("applet names are ASCII");
            listed.lines().collect()
        }
        Applets::Only(names) => names.to_vec(),
    };
    for applet in names.into_iter().filter(|a| *a != "busybox") {
        t.symlink(&format!("bin/{applet}"), "busybox");
    }
    t.file(
        "etc/passwd",
        0o644,
        b"root:x:0:0:root:/root:/bin/sh\nwww:x:33:33:www:/var/www:/bin/sh\n",
    );
    t.file(
        "etc/group",
        0o644,
        b"root:x:0:\nwww:x:33:\naudio:x:29:www\n",
    );
    t.finish()
}
