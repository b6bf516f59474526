//! Bearer token auth against a real `docker-registry` whose `auth.token`
//! realm is a small test server issuing RS256 JWTs (signed with openssl,
//! certificate chain in `x5c`), as Docker Hub and most registries work.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use base64::Engine as _;
use common::image::{self, TestImage};
use common::server::{respond, Req, Server};
use common::{tool, Auth, Registry};
use vessel_image::{ImageStore, Reference};
use vessel_registry::{login, pull, push, Options, RegistryError};

const SERVICE: &str = "vessel-test-registry";
const ISSUER: &str = "vessel-test-issuer";

fn b64url(data: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

/// A JWT granting `access` to `sub`, signed with `key`.
fn jwt(key: &Path, cert_der: &[u8], sub: &str, access: serde_json::Value) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = serde_json::json!({"typ": "JWT", "alg": "RS256",
        "x5c": [base64::engine::general_purpose::STANDARD.encode(cert_der)]});
    let claims = serde_json::json!({"iss": ISSUER, "sub": sub, "aud": SERVICE,
        "exp": now + 300, "nbf": now - 10, "iat": now - 10, "jti": format!("{now}-{sub}"),
        "access": access});
    let input = format!(
        "{}.{}",
        b64url(&serde_json::to_vec(&header).unwrap()),
        b64url(&serde_json::to_vec(&claims).unwrap())
    );
    let mut child = Command::new(tool("openssl"))
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    format!("{input}.{}", b64url(&out.stdout))
}

/// The token realm: alice:s3cret gets what she asks for, anonymous gets
/// nothing, a wrong password gets 401. Counts the tokens it issues.
fn token_server(dir: &Path, issued: Arc<AtomicUsize>) -> Server {
    let key = dir.join("key.pem");
    let cert = dir.join("cert.pem");
    let ok = Command::new(tool("openssl"))
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", "/CN=vessel-token"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(ok.success());
    let der = Command::new(tool("openssl"))
        .args(["x509", "-outform", "DER", "-in"])
        .arg(&cert)
        .output()
        .unwrap()
        .stdout;
    let good = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("alice:s3cret")
    );
    Server::start(Arc::new(move |req: &Req, s: &mut TcpStream| {
        let query = req.path.split_once('?').map_or("", |(_, q)| q);
        let params: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let user = match req.header("authorization") {
            Some(a) if a == good => "alice",
            Some(_) => {
                return respond(
                    s,
                    401,
                    &[],
                    br#"{"errors":[{"code":"UNAUTHORIZED","message":"bad password"}]}"#,
                )
            }
            None => "",
        };
        let access: Vec<serde_json::Value> = params
            .iter()
            .filter(|(k, _)| k == "scope" && !user.is_empty())
            .filter_map(|(_, v)| {
                let mut parts = v.splitn(3, ':');
                let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
                Some(serde_json::json!({"type": kind, "name": name,
                    "actions": actions.split(',').collect::<Vec<_>>()}))
            })
            .collect();
        issued.fetch_add(1, Ordering::SeqCst);
        let token = jwt(&key, &der, user, serde_json::Value::Array(access));
        let body = serde_json::json!({"token": token, "expires_in": 300});
        respond(s, 200, &[], &serde_json::to_vec(&body).unwrap());
    }))
}

#[test]
fn bearer_token_login_pull_push() {
    let keys = tempfile::tempdir().unwrap();
    let issued = Arc::new(AtomicUsize::new(0));
    let realm = token_server(keys.path(), issued.clone());
    let reg = Registry::start(Auth::Token {
        realm: format!("{}/token", realm.url()),
        service: SERVICE.into(),
        issuer: ISSUER.into(),
        cert: keys.path().join("cert.pem"),
    });
    let img = TestImage::busybox("amd64");
    let name = format!("{}/private/bb:1", reg.host());
    image::skopeo_push(&img, &name, Some("alice:s3cret"));

    let auth_dir = tempfile::tempdir().unwrap();
    let opts = Options {
        auth_file: Some(auth_dir.path().join("auth.json")),
        ..Options::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(dir.path()).unwrap();
    let reference = Reference::parse(&name).unwrap();

    // Anonymous: a token without access, then a 401.
    let e = pull(&store, &reference, &opts).unwrap_err();
    assert_eq!(e.http_status(), Some(401), "{e:?}");

    let e = login(&reg.host(), "alice", "wrong", &opts).unwrap_err();
    assert!(matches!(e, RegistryError::LoginRefused { .. }), "{e:?}");
    let msg = format!("{:#}", anyhow::Error::from(e));
    assert!(msg.contains("bad password"), "{msg}");
    login(&reg.host(), "alice", "s3cret", &opts).unwrap();

    // One token serves the whole pull (manifest, config, both layers).
    let before = issued.load(Ordering::SeqCst);
    assert_eq!(
        pull(&store, &reference, &opts).unwrap(),
        img.manifest.digest
    );
    assert_eq!(issued.load(Ordering::SeqCst) - before, 1);

    // Push to another repository: blobs are mounted from the first one
    // (the token's scopes cover pull on the source).
    let dest = Reference::parse(&format!("{}/private/copy:1", reg.host())).unwrap();
    let rec = common::Recorder::new();
    let popts = Options {
        progress: rec.clone(),
        ..opts.clone()
    };
    assert_eq!(
        push(&store, &reference, &dest, &popts).unwrap(),
        img.manifest.digest
    );
    assert!(
        rec.outcomes()
            .iter()
            .all(|o| matches!(o, vessel_registry::Outcome::Mounted(_))),
        "{:?}",
        rec.outcomes()
    );
}
