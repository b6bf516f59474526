//! `-u`/`User`: names resolved through the image's /etc/passwd and
//! /etc/group, as docker does (numeric ids need no entry; names must have one).

use std::io::Read;
use std::os::fd::AsFd;
use std::path::Path;

use crate::error::{EngineError, Result};

/// The user a container's process runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary groups (from /etc/group membership).
    pub additional_gids: Vec<u32>,
    /// Home directory (for `HOME`), `/` when unknown.
    pub home: String,
}

/// The image's account databases (file contents; empty when absent).
#[derive(Debug, Clone, Default)]
pub struct UserDb {
    /// /etc/passwd.
    pub passwd: String,
    /// /etc/group.
    pub group: String,
}

/// At most this much of /etc/passwd or /etc/group is read.
const MAX_DB: u64 = 4 << 20;

impl UserDb {
    /// Read /etc/passwd and /etc/group of the mounted `rootfs`, resolving
    /// paths inside it (a symlink in the image cannot point at the host's).
    pub fn read(rootfs: &Path) -> Result<UserDb> {
        let root = std::fs::File::open(rootfs).map_err(EngineError::io("cannot open", rootfs))?;
        let read = |name: &str| -> Result<String> {
            let flags = libc::O_RDONLY | libc::O_CLOEXEC;
            match vessel_runtime::sys::resolve::open_in_root(root.as_fd(), Path::new(name), flags) {
                Ok(fd) => {
                    let mut s = String::new();
                    std::fs::File::from(fd)
                        .take(MAX_DB)
                        .read_to_string(&mut s)
                        .map_err(EngineError::io("cannot read", rootfs.join(&name[1..])))?;
                    Ok(s)
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
                Err(e) => Err(EngineError::io("cannot open", rootfs.join(&name[1..]))(e)),
            }
        };
        Ok(UserDb {
            passwd: read("/etc/passwd")?,
            group: read("/etc/group")?,
        })
    }

    fn passwd_entries(&self) -> impl Iterator<Item = (&str, u32, u32, &str)> {
        self.passwd.lines().filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 7 || f[0].starts_with('#') {
                return None;
            }
            Some((f[0], f[2].parse().ok()?, f[3].parse().ok()?, f[5]))
        })
    }

    fn group_entries(&self) -> impl Iterator<Item = (&str, u32, Vec<&str>)> {
        self.group.lines().filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 4 || f[0].starts_with('#') {
                return None;
            }
            let members = f[3].split(',').filter(|m| !m.is_empty()).collect();
            Some((f[0], f[2].parse().ok()?, members))
        })
    }

    /// Resolve `user` (`""`, `name`, `uid`, `name:group`, `uid:gid`, ...).
    pub fn resolve(&self, user: &str) -> Result<ResolvedUser> {
        let (u, g) = match user.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (user, None),
        };
        let u = if u.is_empty() { "0" } else { u };
        let entry = match u.parse::<u32>() {
            Ok(uid) => self.passwd_entries().find(|e| e.1 == uid),
            Err(_) => Some(self.passwd_entries().find(|e| e.0 == u).ok_or_else(|| {
                EngineError::UnknownUser {
                    what: "user",
                    name: u.to_owned(),
                    file: "/etc/passwd",
                }
            })?),
        };
        let uid = match entry {
            Some(e) => e.1,
            None => u.parse().unwrap_or(0),
        };
        let mut gid = entry.map_or(0, |e| e.2);
        let home = entry.map_or("/", |e| e.3);
        let home = if home.is_empty() { "/" } else { home };
        let mut additional_gids = Vec::new();
        match g.filter(|g| !g.is_empty()) {
            Some(g) => {
                gid = match g.parse::<u32>() {
                    Ok(n) => n,
                    Err(_) => self
                        .group_entries()
                        .find(|e| e.0 == g)
                        .map(|e| e.1)
                        .ok_or_else(|| EngineError::UnknownUser {
                            what: "group",
                            name: g.to_owned(),
                            file: "/etc/group",
                        })?,
                }
            }
            None => {
                // Supplementary groups only when the group was not forced.
                if let Some((name, ..)) = entry {
                    for (_, id, members) in self.group_entries() {
                        if members.contains(&name) && id != gid && !additional_gids.contains(&id) {
                            additional_gids.push(id);
                        }
                    }
                }
            }
        }
        Ok(ResolvedUser {
            uid,
            gid,
            additional_gids,
            home: home.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> UserDb {
        UserDb {
            passwd: "root:x:0:0:root:/root:/bin/sh\n# comment\nwww:x:33:33:www:/var/www:/bin/false\nnobody:x:65534:65534::/nonexistent:/bin/false\nbroken line\n".into(),
            group: "root:x:0:\nwww:x:33:\naudio:x:29:www,nobody\nvideo:x:44:www\nstaff:x:50:\n".into(),
        }
    }

    #[test]
    fn root_by_default() {
        let r = db().resolve("").unwrap();
        assert_eq!((r.uid, r.gid, r.home.as_str()), (0, 0, "/root"));
        let no_db = UserDb::default().resolve("").unwrap();
        assert_eq!((no_db.uid, no_db.gid, no_db.home.as_str()), (0, 0, "/"));
    }

    #[test]
    fn names_resolve_with_groups() {
        let r = db().resolve("www").unwrap();
        assert_eq!((r.uid, r.gid, r.home.as_str()), (33, 33, "/var/www"));
        assert_eq!(r.additional_gids, vec![29, 44]);
        let r = db().resolve("www:staff").unwrap();
        assert_eq!((r.uid, r.gid), (33, 50));
        assert!(
            r.additional_gids.is_empty(),
            "an explicit group means no supplementary ones"
        );
    }

    #[test]
    fn numeric_ids_need_no_entry() {
        let r = db().resolve("1234").unwrap();
        assert_eq!((r.uid, r.gid, r.home.as_str()), (1234, 0, "/"));
        let r = db().resolve("1234:5678").unwrap();
        assert_eq!((r.uid, r.gid), (1234, 5678));
        let r = db().resolve("33").unwrap();
        assert_eq!((r.uid, r.gid, r.home.as_str()), (33, 33, "/var/www"));
        let r = UserDb::default()
            .resolve("nobody:0")
            .err()
            .unwrap()
            .to_string();
        assert!(r.contains("nobody") && r.contains("/etc/passwd"), "{r}");
    }

    #[test]
    fn unknown_names_fail_naming_the_file() {
        let e = db().resolve("alice").unwrap_err().to_string();
        assert!(e.contains("\"alice\"") && e.contains("/etc/passwd"), "{e}");
        let e = db().resolve("www:wheel").unwrap_err().to_string();
        assert!(e.contains("\"wheel\"") && e.contains("/etc/group"), "{e}");
    }

    #[test]
    fn reads_inside_the_rootfs_only() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(tmp.path().join("outside"), "evil:x:7:7::/:/bin/sh\n").unwrap();
        // An absolute symlink that would escape if followed on the host.
        let target = tmp.path().join("outside");
        std::os::unix::fs::symlink(&target, root.join("etc/passwd")).unwrap();
        std::fs::write(root.join("etc/group"), "g:x:9:\n").unwrap();
        let db = UserDb::read(&root).unwrap();
        assert_eq!(
            db.passwd, "",
            "the symlink resolved inside the rootfs, to nothing"
        );
        assert_eq!(db.group, "g:x:9:\n");
    }
}
