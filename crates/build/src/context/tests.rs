use std::os::unix::fs::{symlink, PermissionsExt};

use super::*;

fn ctx() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ctx");
    fs::create_dir_all(dir.join("src/sub")).unwrap();
    fs::write(dir.join("a.txt"), "a").unwrap();
    fs::write(dir.join("b.txt"), "b").unwrap();
    fs::write(dir.join("src/main.c"), "int main;").unwrap();
    fs::write(dir.join("src/sub/x.log"), "log").unwrap();
    fs::write(tmp.path().join("outside"), "secret").unwrap();
    symlink("/etc", dir.join("etc-link")).unwrap();
    symlink("../outside", dir.join("up-link")).unwrap();
    symlink("a.txt", dir.join("in-link")).unwrap();
    let dir = fs::canonicalize(dir).unwrap();
    (tmp, dir)
}

fn names(v: &[Source]) -> Vec<String> {
    v.iter().map(|s| s.rel.clone()).collect()
}

#[test]
fn sources_outside_the_context_are_refused() {
    let (_t, dir) = ctx();
    let ig = Ignore::default();
    let root = Root::Context {
        dir: &dir,
        ignore: &ig,
    };
    for src in ["../outside", "src/../../outside", "/../outside", ".."] {
        let e = select(root, src).unwrap_err();
        assert!(matches!(e, ContextError::Outside(_)), "{src}: {e}");
        assert!(e.to_string().contains("outside the build context"), "{e}");
    }
    for src in ["etc-link", "etc-link/passwd", "up-link", "*-link"] {
        let e = select(root, src).unwrap_err();
        assert!(
            matches!(e, ContextError::SymlinkOutside { .. }),
            "{src}: {e}"
        );
    }
    // Inside is fine, through a symlink too; `/x` means the context's x.
    let s = select(root, "in-link").unwrap();
    assert_eq!(s[0].host, dir.join("a.txt"));
    assert_eq!(names(&select(root, "/src/../a.txt").unwrap()), ["a.txt"]);
}

#[test]
fn globs_and_dockerignore() {
    let (_t, dir) = ctx();
    let ig = Ignore::parse("b.txt\n**/*.log\n").unwrap();
    let root = Root::Context {
        dir: &dir,
        ignore: &ig,
    };
    assert_eq!(names(&select(root, "*.txt").unwrap()), ["a.txt"]);
    assert!(matches!(
        select(root, "b.txt").unwrap_err(),
        ContextError::NotFound(_)
    ));
    assert!(matches!(
        select(root, "nothing*").unwrap_err(),
        ContextError::NotFound(_)
    ));
    let src = &select(root, "src").unwrap()[0];
    let e: Vec<String> = entries(root, src)
        .unwrap()
        .iter()
        .map(|e| e.rel.display().to_string())
        .collect();
    assert_eq!(e, ["main.c", "sub"], "x.log is ignored");
}

#[test]
fn digest_follows_content_and_mode() {
    let (_t, dir) = ctx();
    let ig = Ignore::default();
    let root = Root::Context {
        dir: &dir,
        ignore: &ig,
    };
    let d = || {
        let s = select(root, "src").unwrap().remove(0);
        let e = entries(root, &s).unwrap();
        digest(&[(s, e)]).unwrap()
    };
    let first = d();
    assert_eq!(first, d());
    fs::write(dir.join("src/main.c"), "int main2;").unwrap();
    let second = d();
    assert_ne!(first, second);
    fs::set_permissions(dir.join("src/main.c"), fs::Permissions::from_mode(0o755)).unwrap();
    assert_ne!(second, d());
}

#[test]
fn image_roots_resolve_symlinks_inside() {
    let tmp = tempfile::tempdir().unwrap();
    let img = tmp.path();
    fs::create_dir_all(img.join("etc")).unwrap();
    fs::write(img.join("etc/passwd"), "inside").unwrap();
    symlink("/etc/passwd", img.join("abs")).unwrap();
    symlink("../../../etc/passwd", img.join("climb")).unwrap();
    let root = Root::Image { dir: img };
    for src in ["abs", "climb", "../../etc/passwd"] {
        let s = select(root, src).unwrap();
        assert_eq!(fs::read_to_string(&s[0].host).unwrap(), "inside", "{src}");
    }
    assert!(matches!(
        select(root, "missing").unwrap_err(),
        ContextError::NotInImage(_)
    ));
}
