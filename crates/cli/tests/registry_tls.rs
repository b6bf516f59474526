//! `vessel push` and `pull` over HTTPS against a registry with a name that is
//! not loopback (`registry.vessel.test`), whose certificate is signed by a
//! CA the test makes with openssl. The registry (`docker-registry` with
//! `http.tls`) listens on 127.0.0.1; the name resolves there for vessel only:
//! vessel runs in a private mount namespace with an /etc/hosts of the test's
//! bind-mounted over the host's. The system CA roots are what
//! rustls-native-certs loads, which honours SSL_CERT_FILE, so the test CA is
//! handed to vessel that way and the host's trust store is never changed.
//! Needs root (mount namespaces; the busybox image of the store).

mod engine_common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use engine_common::{stderr, stdout, Store, IMAGE};
use vessel_testkit::registry::{tool, Auth, Registry, Tls};

const NAME: &str = "registry.vessel.test";

/// A CA and a server certificate for [`NAME`] signed by it, and an
/// /etc/hosts that sends [`NAME`] to 127.0.0.1.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        let pki = Pki {
            dir: tempfile::tempdir().unwrap(),
        };
        let d = pki.dir.path();
        openssl(
            d,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-subj",
                "/CN=vessel test CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
        openssl(
            d,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                &format!("/CN={NAME}"),
            ],
        );
        std::fs::write(
            d.join("server.ext"),
            format!(
                "subjectAltName=DNS:{NAME}\nbasicConstraints=CA:FALSE\n\
                 extendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\n"
            ),
        )
        .unwrap();
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "server.ext",
                "-out",
                "server.pem",
            ],
        );
        let mut hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
        if !hosts.is_empty() && !hosts.ends_with('\n') {
            hosts.push('\n');
        }
        hosts.push_str(&format!("127.0.0.1 {NAME}\n"));
        std::fs::write(d.join("hosts"), hosts).unwrap();
        pki
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new(tool("openssl"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `vessel ARGS` against `store`, in a private mount namespace where
/// /etc/hosts is the test's, trusting `ca` (or only the system's roots).
fn vessel(store: &Store, pki: &Pki, ca: Option<&Path>, args: &[&str]) -> Output {
    let mut c = Command::new(tool("unshare"));
    c.args(["-m", "--propagation", "private", "sh", "-c"])
        .arg("mount --bind \"$0\" /etc/hosts && exec \"$@\"")
        .arg(pki.path("hosts"))
        .arg(env!("CARGO_BIN_EXE_vessel"))
        .arg("--root")
        .arg(store.root())
        .arg("--runroot")
        .arg(store.runroot())
        .args(args)
        .stdin(Stdio::null())
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR");
    if let Some(ca) = ca {
        c.env("SSL_CERT_FILE", ca);
    }
    c.output().unwrap()
}

/// A store with nothing in it (no busybox image).
fn empty_store() -> Store {
    Store {
        dir: tempfile::Builder::new()
            .prefix("vessel-test")
            .tempdir()
            .unwrap(),
    }
}

#[test]
fn pull_over_https_verifies_the_registry_certificate_against_the_ca_roots() {
    let s = Store::new();
    let pki = Pki::new();
    let reg = Registry::start_with(
        Auth::None,
        Some(Tls {
            certificate: &pki.path("server.pem"),
            key: &pki.path("server.key"),
        }),
    );
    let registry = format!("{NAME}:{}", reg.port);
    let image = format!("{registry}/lib/busybox:tls");
    let ca = pki.path("ca.pem");

    // Push over HTTPS, trusting the test CA.
    let o = vessel(&s, &pki, Some(&ca), &["push", "-q", IMAGE, &image]);
    assert!(o.status.success(), "push: {}", stderr(&o));
    let pushed = stdout(&o).trim().to_owned();
    assert!(pushed.starts_with("sha256:"), "{pushed}");

    // Pull over HTTPS into an empty store: the same digest, the image listed.
    let p = empty_store();
    let o = vessel(&p, &pki, Some(&ca), &["pull", "-q", &image]);
    assert!(o.status.success(), "pull: {}", stderr(&o));
    assert_eq!(stdout(&o).trim(), pushed);
    let o = p.vessel(&["images"]);
    assert!(
        stdout(&o).contains(&format!("{registry}/lib/busybox")),
        "{}",
        stdout(&o)
    );

    // With only the system's roots the certificate is not trusted: a clear
    // error naming the registry and the certificate, and no image.
    let u = empty_store();
    let o = vessel(&u, &pki, None, &["pull", &image]);
    assert!(!o.status.success(), "pull without the CA succeeded");
    let err = stderr(&o);
    assert!(err.contains(&registry), "{err}");
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    let o = u.vessel(&["images", "-q"]);
    assert_eq!(stdout(&o).trim(), "", "an image after a failed pull");
}
