//! A tar archive written in memory, entry by entry, with fixed owners and
//! times so that the same entries always give the same bytes (and digest).

/// An archive being written.
pub struct Tarball(tar::Builder<Vec<u8>>);

/// Every entry's mtime: fixed, so that archives are reproducible.
const MTIME: u64 = 1_600_000_000;

impl std::fmt::Debug for Tarball {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tarball")
    }
}

impl Default for Tarball {
    fn default() -> Self {
        Tarball(tar::Builder::new(Vec::new()))
    }
}

impl Tarball {
    /// An empty archive.
    pub fn new() -> Self {
        Self::default()
    }

    fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(MTIME);
        h.set_size(size);
        h
    }

    /// A directory owned by root.
    pub fn dir(&mut self, path: &str, mode: u32) -> &mut Self {
        let mut h = Self::header(tar::EntryType::Directory, mode, 0);
        self.0
            .append_data(&mut h, path, &[][..])
            .expect("in memory");
        self
    }

    /// A regular file owned by root.
    pub fn file(&mut self, path: &str, mode: u32, data: &[u8]) -> &mut Self {
        let mut h = Self::header(tar::EntryType::Regular, mode, data.len() as u64);
        self.0.append_data(&mut h, path, data).expect("in memory");
        self
    }

    /// A symbolic link to `target`.
    pub fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        let mut h = Self::header(tar::EntryType::Symlink, 0o777, 0);
        self.0.append_link(&mut h, path, target).expect("in memory");
        self
    }

    /// The archive's bytes.
    pub fn finish(self) -> Vec<u8> {
        self.0.into_inner().expect("in memory")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_read_back_as_written() {
        let mut t = Tarball::new();
        t.dir("d", 0o755)
            .file("d/f", 0o600, b"hi")
            .symlink("l", "d/f");
        let bytes = t.finish();
        let mut a = tar::Archive::new(bytes.as_slice());
        let got: Vec<(String, tar::EntryType, u32)> = a
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().display().to_string(),
                    h.entry_type(),
                    h.mode().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("d".into(), tar::EntryType::Directory, 0o755),
                ("d/f".into(), tar::EntryType::Regular, 0o600),
                ("l".into(), tar::EntryType::Symlink, 0o777),
            ]
        );
    }
}
