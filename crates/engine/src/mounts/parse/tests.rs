use super::*;

fn err(r: Result<impl std::fmt::Debug>) -> String {
    r.unwrap_err().to_string()
}

#[test]
fn volume_forms() {
    let anon = volume("/data").unwrap();
    assert_eq!(
        (anon.kind, anon.source.as_str(), anon.anonymous),
        (MountKind::Volume, "", true)
    );
    let named = volume("cache:/var/cache:ro,nocopy").unwrap();
    assert_eq!(named.source, "cache");
    assert!(named.read_only && named.no_copy && !named.anonymous);
    let bind = volume("/srv/x/:/x//y/.:rw,Z,rshared").unwrap();
    assert_eq!(
        (bind.kind, bind.source.as_str()),
        (MountKind::Bind, "/srv/x")
    );
    assert_eq!(bind.destination, "/x/y");
    assert_eq!(bind.relabel.as_deref(), Some("Z"));
    assert_eq!(bind.propagation(), "rshared");
    assert!(!bind.read_only);
    assert_eq!(volume("/a:/b:z,ro").unwrap().mode(), "ro,z");
    assert_eq!(volume("/a:/b").unwrap().propagation(), "rprivate");
}

#[test]
fn volume_bad_specs_name_the_flag_and_value() {
    for bad in [
        ":/x",              // empty source
        "",                 // nothing
        "name:",            // empty destination
        "rel",              // relative destination
        "vol:rel/path",     // relative destination
        "vol:/",            // the root
        "vol:/a/../../etc", // ..
        "./rel:/x",         // relative host path
        "a/b:/x",           // neither a path nor a name
        "-x:/x",            // name must start alphanumeric
        "/h:/x:ro,rw",      // conflicting access
        "/h:/x:bogus",      // unknown option
        "/h:/x:ro,",        // empty option
        "vol:/x:rshared",   // propagation on a volume
        "/h:/x:nocopy",     // nocopy on a bind
        "/a:/b:ro:extra",   // too many colons
        "/h/../../etc:/x",  // .. in the host path
        "vol:/x\0y",        // NUL byte
    ] {
        let e = err(volume(bad));
        assert!(e.contains("-v"), "{bad:?}: {e}");
        assert!(e.contains(&format!("{bad:?}")), "{bad:?}: {e}");
    }
}

#[test]
fn mount_forms() {
    let MountRequest::Point(b) =
        mount("type=bind,source=/srv,target=/x,readonly,bind-propagation=rslave").unwrap()
    else {
        panic!("a bind is a mount point")
    };
    assert_eq!(
        (b.kind, b.source.as_str(), b.destination.as_str()),
        (MountKind::Bind, "/srv", "/x")
    );
    assert!(b.read_only);
    assert_eq!(b.propagation(), "rslave");
    let MountRequest::Point(v) =
        mount("src=cache,dst=/c,volume-nocopy,volume-label=a=b,ro=false").unwrap()
    else {
        panic!("a volume is a mount point")
    };
    assert_eq!((v.kind, v.source.as_str()), (MountKind::Volume, "cache"));
    assert!(v.no_copy && !v.read_only);
    assert_eq!(v.labels.get("a").map(String::as_str), Some("b"));
    let MountRequest::Point(anon) = mount("type=volume,target=/d").unwrap() else {
        panic!("a volume is a mount point")
    };
    assert!(anon.anonymous && anon.source.is_empty());
    let t = mount("type=tmpfs,target=/t,tmpfs-size=64m,tmpfs-mode=1770,readonly").unwrap();
    assert_eq!(
        t,
        MountRequest::Tmpfs(TmpfsMount {
            destination: "/t".into(),
            options: vec!["size=64m".into(), "mode=1770".into(), "ro".into()],
        })
    );
    // Quoted fields, as Go's csv reads them.
    let MountRequest::Point(q) = mount(r#"type=bind,"source=/a,b","target=/x""y""#).unwrap() else {
        panic!("a bind is a mount point")
    };
    assert_eq!(
        (q.source.as_str(), q.destination.as_str()),
        ("/a,b", "/x\"y")
    );
}

#[test]
fn mount_bad_specs_name_the_flag_and_value() {
    for bad in [
        "type=bind,target=/x",                           // bind without source
        "type=bind,source=rel,target=/x",                // relative host path
        "type=tmpfs,source=/x,target=/t",                // tmpfs with a source
        "type=volume,source=/x",                         // no target
        "type=volume,target=x",                          // relative target
        "type=volume,target=/",                          // root
        "type=volume,target=/a/../b",                    // ..
        "type=npipe,target=/x",                          // unknown type
        "type=bind,source=/a,target=/x,colour=blue",     // unknown key
        "type=bind,source=/a,target=/x,,",               // empty field
        "type=bind,source=/a,target=/x,readonly=maybe",  // bad bool
        "type=bind,source=/a,target=/x,tmpfs-size=1m",   // tmpfs key on a bind
        "type=tmpfs,target=/t,volume-nocopy",            // volume key on a tmpfs
        "type=volume,target=/t,bind-propagation=shared", // bind key on a volume
        "type=bind,source=/a,target=/x,bind-propagation=sideways",
        "type=tmpfs,target=/t,tmpfs-size=lots",
        "type=tmpfs,target=/t,tmpfs-size=1mm",
        "type=tmpfs,target=/t,tmpfs-mode=999",
        "type=volume,source=cache,target=/c,volume-opt=type=nfs",
        "type=volume,source=cache,target=/c,volume-driver=nfs",
        "type=volume,source=../x,target=/c",
        r#"type=bind,"source=/a,target=/x"#, // unterminated quote
        r#"type=bind,source=/a"b,target=/x"#, // bare quote
        "type=bind,source=/a,target=/x\0",   // NUL
        "source=,target=/x",                 // empty value
    ] {
        let e = err(mount(bad));
        assert!(e.contains("--mount"), "{bad:?}: {e}");
        assert!(e.contains(&format!("{bad:?}")), "{bad:?}: {e}");
    }
}

#[test]
fn arbitrary_bytes_never_panic_and_never_escape() {
    // A cheap deterministic fuzz: every result is an error or a clean,
    // absolute destination without `..`.
    let alphabet = [
        "/", ":", ",", "=", "\"", "..", ".", "a", "ro", "type", "bind", "z", "\0", "é",
    ];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..20_000 {
        let mut s = String::new();
        for _ in 0..(seed % 12) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            s.push_str(alphabet[(seed % alphabet.len() as u64) as usize]);
        }
        let dests = [
            volume(&s).ok().map(|m| m.destination),
            match mount(&s) {
                Ok(MountRequest::Point(m)) => Some(m.destination),
                Ok(MountRequest::Tmpfs(t)) => Some(t.destination),
                Err(_) => None,
            },
        ];
        for d in dests.into_iter().flatten() {
            assert!(d.starts_with('/') && d.len() > 1, "{s:?} -> {d:?}");
            assert!(
                !d.split('/').any(|c| c == ".." || c == "."),
                "{s:?} -> {d:?}"
            );
            assert!(!d.contains('\0'), "{s:?}");
        }
    }
}
