use super::*;

use crate::error::EngineError;

fn store() -> (tempfile::TempDir, VolumeStore) {
    let dir = tempfile::tempdir().unwrap();
    let s = VolumeStore::open(dir.path().join("volumes")).unwrap();
    (dir, s)
}

#[test]
fn names() {
    for ok in ["ab", "data", "my-vol_1.x", "0123"] {
        validate_name(ok).unwrap();
    }
    for bad in [
        "",
        "a",
        "-x",
        ".hidden",
        "a/b",
        "../x",
        "a b",
        "x\0",
        &"a".repeat(256),
    ] {
        assert!(validate_name(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn create_get_list_remove() {
    let (_d, s) = store();
    let lock = s.lock().unwrap();
    let labels = [("k".to_owned(), "v".to_owned())].into_iter().collect();
    let (v, created) = s.create(&lock, "data", &labels, false).unwrap();
    assert!(created);
    assert_eq!((v.name.as_str(), v.driver.as_str()), ("data", "local"));
    assert!(s.data_dir("data").is_dir());
    // An existing name is returned as it is.
    let (again, created) = s.create(&lock, "data", &Default::default(), true).unwrap();
    assert!(!created);
    assert_eq!(again, v);
    s.create(&lock, "anon0", &Default::default(), true).unwrap();
    let names: Vec<String> = s.list().unwrap().into_iter().map(|v| v.name).collect();
    assert_eq!(names, ["anon0", "data"]);
    std::fs::write(s.data_dir("data").join("f"), b"12345").unwrap();
    assert_eq!(s.size("data"), 5);
    s.remove(&lock, "data").unwrap();
    assert!(matches!(
        s.get("data"),
        Err(EngineError::Volume(VolumeError::NotFound(_)))
    ));
    assert!(matches!(
        s.remove(&lock, "data"),
        Err(EngineError::Volume(VolumeError::NotFound(_)))
    ));
    assert!(s
        .create(&lock, "../escape", &Default::default(), false)
        .is_err());
}

#[test]
fn crash_leftovers_are_invisible_and_swept() {
    let (d, s) = store();
    let root = d.path().join("volumes");
    // A creation and a removal interrupted by a crash.
    std::fs::create_dir_all(root.join(".tmp-1-0/_data")).unwrap();
    std::fs::create_dir_all(root.join(".rm-2-0/_data")).unwrap();
    // A directory without a record (cannot happen through rename, but be safe).
    std::fs::create_dir_all(root.join("norecord/_data")).unwrap();
    assert!(s.list().unwrap().is_empty());
    drop(s.lock().unwrap());
    assert!(!root.join(".tmp-1-0").exists() && !root.join(".rm-2-0").exists());
}

#[test]
fn a_corrupt_record_is_named() {
    let (d, s) = store();
    let lock = s.lock().unwrap();
    s.create(&lock, "bad", &Default::default(), false).unwrap();
    let rec = d.path().join("volumes/bad/volume.json");
    std::fs::write(&rec, b"{not json").unwrap();
    let e = s.get("bad").unwrap_err().to_string();
    assert!(e.contains("volume.json"), "{e}");
}
