//! Login, pull and push against a real `docker-registry` with htpasswd
//! Basic auth.

mod common;

use common::image::{self, TestImage};
use common::{Auth, Registry};
use vessel_image::{ImageStore, Reference};
use vessel_registry::{login, logout, pull, push, Options, RegistryError};

#[test]
fn basic_auth_login_pull_push_logout() {
    let reg = Registry::start(Auth::Basic {
        user: "alice".into(),
        password: "s3cret".into(),
    });
    let img = TestImage::busybox("amd64");
    let name = format!("{}/private/bb:1", reg.host());
    image::skopeo_push(&img, &name, Some("alice:s3cret"));

    let auth_dir = tempfile::tempdir().unwrap();
    let auth_file = auth_dir.path().join("containers/auth.json");
    let opts = Options {
        auth_file: Some(auth_file.clone()),
        ..Options::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(dir.path()).unwrap();
    let reference = Reference::parse(&name).unwrap();

    // No credentials: a 401 that names the registry and repository.
    let e = pull(&store, &reference, &opts).unwrap_err();
    assert_eq!(e.http_status(), Some(401), "{e:?}");
    let msg = format!("{:#}", anyhow::Error::from(e));
    assert!(
        msg.contains(&reg.host()) && msg.contains("private/bb"),
        "{msg}"
    );

    // A wrong password is refused and nothing is stored.
    let e = login(&reg.host(), "alice", "wrong", &opts).unwrap_err();
    assert!(matches!(e, RegistryError::LoginRefused { .. }), "{e:?}");
    assert!(!auth_file.exists());

    login(&reg.host(), "alice", "s3cret", &opts).unwrap();
    let saved = std::fs::read_to_string(&auth_file).unwrap();
    assert!(saved.contains(&reg.host()), "{saved}");

    assert_eq!(
        pull(&store, &reference, &opts).unwrap(),
        img.manifest.digest
    );
    let dest = Reference::parse(&format!("{}/private/copy:1", reg.host())).unwrap();
    assert_eq!(
        push(&store, &reference, &dest, &opts).unwrap(),
        img.manifest.digest
    );

    assert!(logout(&reg.host(), &opts).unwrap());
    assert!(!logout(&reg.host(), &opts).unwrap());
    let again = ImageStore::open(tempfile::tempdir().unwrap().path()).unwrap();
    let e = pull(&again, &reference, &opts).unwrap_err();
    assert_eq!(e.http_status(), Some(401), "{e:?}");
}
