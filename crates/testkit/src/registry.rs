//! A real OCI registry for tests: `docker-registry` (distribution, from apt)
//! on 127.0.0.1 with a free port and its storage in a temporary directory,
//! without auth, with htpasswd Basic auth, or with token auth, over plain
//! HTTP or over HTTPS with a given certificate. A missing tool is a failure
//! naming it, never a skip: run scripts/install-deps.sh.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A free TCP port on loopback (bound then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The path of a tool the tests need, or a failure saying how to get it.
pub fn tool(name: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/sbin", "/bin", "/usr/local/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!("{name} is not installed: run scripts/install-deps.sh");
}

/// How the registry authenticates.
#[derive(Debug)]
pub enum Auth {
    None,
    /// htpasswd Basic auth with one user.
    Basic {
        user: String,
        password: String,
    },
    /// Token auth: realm URL, service, issuer, PEM certificate path.
    Token {
        realm: String,
        service: String,
        issuer: String,
        cert: PathBuf,
    },
}

/// A running registry; killed on drop.
#[derive(Debug)]
pub struct Registry {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Child,
}

/// A certificate and its key (PEM files) for a registry that serves HTTPS.
#[derive(Debug, Clone, Copy)]
pub struct Tls<'a> {
    pub certificate: &'a Path,
    pub key: &'a Path,
}

impl Registry {
    /// A registry that speaks plain HTTP.
    pub fn start(auth: Auth) -> Registry {
        Registry::start_with(auth, None)
    }

    /// A registry that speaks HTTPS with `tls` (plain HTTP without).
    pub fn start_with(auth: Auth, tls: Option<Tls<'_>>) -> Registry {
        let bin = tool("docker-registry");
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let storage = dir.path().join("storage");
        std::fs::create_dir(&storage).unwrap();
        let auth_yaml = match auth {
            Auth::None => String::new(),
            Auth::Basic { user, password } => {
                let out = Command::new(tool("htpasswd"))
                    .args(["-Bbn", &user, &password])
                    .output()
                    .unwrap();
                assert!(out.status.success(), "htpasswd failed");
                let file = dir.path().join("htpasswd");
                std::fs::write(&file, &out.stdout).unwrap();
                format!(
                    "auth:\n  htpasswd:\n    realm: vessel-test\n    path: {}\n",
                    file.display()
                )
            }
            Auth::Token {
                realm,
                service,
                issuer,
                cert,
            } => format!(
                "auth:\n  token:\n    realm: {realm}\n    service: {service}\n    issuer: {issuer}\n    rootcertbundle: {}\n",
                cert.display()
            ),
        };
        let tls_yaml = match tls {
            None => String::new(),
            Some(t) => format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                t.certificate.display(),
                t.key.display()
            ),
        };
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{tls_yaml}{auth_yaml}",
            storage.display()
        );
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let mut child = Command::new(bin)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        // Wait until it accepts connections (or died).
        for _ in 0..400 {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Registry { dir, port, child };
            }
            if let Some(status) = child.try_wait().unwrap() {
                let mut log = String::new();
                std::fs::File::open(dir.path().join("registry.log"))
                    .unwrap()
                    .read_to_string(&mut log)
                    .unwrap();
                panic!("docker-registry exited with {status}:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("docker-registry did not listen on port {port}");
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Where the registry keeps the bytes of the blob `sha256:HEX`.
    pub fn blob_data(&self, hex: &str) -> PathBuf {
        self.dir.path().join(format!(
            "storage/docker/registry/v2/blobs/sha256/{}/{hex}/data",
            &hex[..2]
        ))
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
