//! The content store: verify-then-rename, nothing visible on failure.

use std::io::Write;

use vessel_image::{ContentError, ContentStore, Digest};

#[test]
fn commit_verifies_before_the_blob_is_visible() {
    let dir = tempfile::tempdir().unwrap();
    let store = ContentStore::open(dir.path()).unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("oci-layout")).unwrap(),
        r#"{"imageLayoutVersion":"1.0.0"}"#
    );
    let data = b"hello blob";
    let digest = Digest::of(data);

    // Wrong digest: error, nothing visible, no temporary file left.
    let mut w = store.writer().unwrap();
    w.write_all(data).unwrap();
    let e = w.commit(None, Some(&Digest::of(b"other"))).unwrap_err();
    assert!(matches!(e, ContentError::DigestMismatch { .. }), "{e}");
    assert!(!store.exists(&digest));
    assert!(store.ingests().unwrap().is_empty());

    // Wrong size.
    let mut w = store.writer().unwrap();
    w.write_all(data).unwrap();
    let e = w.commit(Some(3), Some(&digest)).unwrap_err();
    assert!(matches!(e, ContentError::SizeMismatch { .. }), "{e}");
    assert!(!store.exists(&digest));

    // Abandoned writer.
    let mut w = store.writer().unwrap();
    w.write_all(data).unwrap();
    assert_eq!(
        store.ingests().unwrap().len(),
        1,
        "an ingest in progress is visible as such"
    );
    drop(w);
    assert!(store.ingests().unwrap().is_empty());
    assert!(store.list().unwrap().is_empty());

    // Right: visible under blobs/sha256/<hex>.
    let mut w = store.writer().unwrap();
    w.write_all(data).unwrap();
    assert_eq!(
        w.commit(Some(data.len() as u64), Some(&digest)).unwrap(),
        digest
    );
    assert!(dir.path().join("blobs/sha256").join(digest.hex()).is_file());
    assert_eq!(store.read_blob(&digest, 1024).unwrap(), data);
    assert_eq!(store.size(&digest).unwrap(), data.len() as u64);
    assert_eq!(store.list().unwrap(), vec![digest.clone()]);
    // Again: idempotent.
    assert_eq!(store.write_blob(data).unwrap(), digest);
    assert!(store.ingests().unwrap().is_empty());
    // Limits and absence.
    assert!(matches!(
        store.read_blob(&digest, 2),
        Err(ContentError::TooLarge { .. })
    ));
    let missing = Digest::of(b"missing");
    assert!(matches!(
        store.open_blob(&missing),
        Err(ContentError::NotFound(_))
    ));
    // A blob changed on disk behind the store's back is caught on read.
    std::fs::write(store.blob_path(&digest), b"tampered!!").unwrap();
    assert!(matches!(
        store.read_blob(&digest, 1024),
        Err(ContentError::DigestMismatch { .. })
    ));
}

#[test]
fn digests_cannot_inject_paths() {
    for bad in [
        "sha256:../../../../../../../../../../../../../../../../../../../etc/passwd",
        "sha256:/etc/passwd",
    ] {
        assert!(Digest::parse(bad).is_err());
    }
    assert!(Digest::from_hex("../x").is_err());
}
