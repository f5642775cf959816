//! The debuginfod cache, laid out as elfutils lays it so that gdb and crashcatch share it:
//! `$cache/<build-id hex>/debuginfo`. Written through the output door (crate::door): folders
//! are made with mode 0700, files are written under a temporary name in the same folder and
//! renamed into place with mode 0400; an empty file is
//! elfutils' record of a miss, trusted for `$cache/cache_miss_s` seconds (default 600).
//! Nothing planted in the cache is followed: a symbolic link, a FIFO or anything but a regular
//! file is ignored, and a file is used only after its build-id was checked.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::door::{FileMode, OutDir, Place};

use super::verify::verify;
use crate::modules::ElfInfo;

/// How long elfutils trusts a recorded miss when `cache_miss_s` does not say.
pub(crate) const DEFAULT_MISS_TTL: Duration = Duration::from_secs(600);

/// What the cache holds for one build-id.
pub(crate) enum Lookup {
    /// A verified debug file.
    Hit(Box<ElfInfo>),
    /// A recent miss: no server had it, `age` ago.
    Miss { age: Duration },
    /// Nothing (or an expired miss): ask the servers.
    Absent,
    /// Something unusable is there (named in the reason); it is ignored and replaced when a
    /// server has the file.
    Unusable(String),
    /// The entry's folder itself cannot be used (a symbolic link, not a folder): neither read
    /// nor written.
    Refused(String),
}

/// Why the entry's folder cannot be made ready.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PrepareError {
    /// The door out could not make or open it (a link someone else planted on the way).
    #[error(transparent)]
    Door(#[from] crate::door::OpenDirError),
    #[error("{} is not a folder", .path.display())]
    NotAFolder { path: PathBuf },
}

/// The cache entry of one build-id.
#[derive(Debug, Clone)]
pub(crate) struct CacheEntry {
    pub dir: PathBuf,
    pub file: PathBuf,
}

impl CacheEntry {
    /// `hex` must be lowercase hex digits (a build-id), so it cannot name anything outside `root`.
    pub fn new(root: &Path, hex: &str) -> CacheEntry {
        debug_assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()));
        let dir = root.join(hex);
        let file = dir.join("debuginfo");
        CacheEntry { dir, file }
    }

    /// Looks the entry up; a file found is opened without following links and verified.
    pub fn lookup(&self, build_id: &[u8], miss_ttl: Duration) -> Lookup {
        match self.dir.symlink_metadata() {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Lookup::Absent,
            Err(e) => return Lookup::Refused(format!("{}: {e}", self.dir.display())),
            Ok(m) if m.file_type().is_symlink() => {
                return Lookup::Refused(format!("{} is a symbolic link", self.dir.display()))
            }
            Ok(m) if !m.is_dir() => return Lookup::Refused(format!("{} is not a folder", self.dir.display())),
            Ok(_) => {}
        }
        let file = match open_no_follow(&self.file) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Lookup::Absent,
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                return Lookup::Unusable(format!("{} is a symbolic link", self.file.display()))
            }
            Err(e) => return Lookup::Unusable(format!("{}: {e}", self.file.display())),
        };
        let meta = match file.metadata() {
            Ok(m) => m,
            Err(e) => return Lookup::Unusable(format!("{}: {e}", self.file.display())),
        };
        if !meta.is_file() {
            return Lookup::Unusable(format!("{} is not a regular file", self.file.display()));
        }
        if meta.len() == 0 {
            let age = meta.modified().ok().and_then(|t| SystemTime::now().duration_since(t).ok()).unwrap_or_default();
            return if age <= miss_ttl { Lookup::Miss { age } } else { Lookup::Absent };
        }
        match verify(&file, &self.file, build_id) {
            Ok(elf) => Lookup::Hit(Box::new(elf)),
            Err(why) => Lookup::Unusable(format!("{}: {why}", self.file.display())),
        }
    }

    /// Opens (makes, mode 0700) the cache folder and the entry's folder, through the door: a
    /// link someone else planted on the way is refused.
    pub(crate) fn prepare(&self) -> Result<OutDir, PrepareError> {
        // Stricter than the door: the entry's own folder is never a link (as lookup says).
        if self.dir.symlink_metadata().is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(PrepareError::NotAFolder { path: self.dir.clone() });
        }
        Ok(OutDir::open(&self.dir, true)?)
    }

    /// A new temporary file beside the entry (mode 0600, O_EXCL): its name and the file.
    pub(crate) fn temp(&self, dir: &OutDir) -> io::Result<(String, File)> {
        dir.temporary("debuginfo", FileMode::PRIVATE)
    }

    /// Puts a finished (and verified) temporary file in place, read-only as elfutils leaves its
    /// files. A link or file already at the name is replaced, never followed.
    pub fn keep(&self, dir: &OutDir, tmp: &str, file: &File) -> io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o400))?;
        dir.persist(tmp, "debuginfo", Place::Replace)
    }

    /// Drops a temporary file that was not kept.
    pub(crate) fn discard(&self, dir: &OutDir, tmp: &str) {
        let _ = dir.remove(tmp);
    }

    /// Records that no server had the file: an empty file, as elfutils writes one.
    pub(crate) fn record_miss(&self) -> io::Result<()> {
        let dir = self.prepare().map_err(io::Error::other)?;
        dir.write("debuginfo", b"", FileMode { bits: 0o400, owner: None }, Place::Replace)
    }
}

/// Opens for reading without following a final symbolic link and without blocking on a FIFO
/// (the input door).
fn open_no_follow(path: &Path) -> io::Result<File> {
    use crate::process::files::OpenError;
    crate::process::files::open_regular_no_follow(path).map_err(|e| match e {
        OpenError::NotFound => io::Error::from(io::ErrorKind::NotFound),
        OpenError::SymlinkLoop => io::Error::from_raw_os_error(libc::ELOOP),
        e => io::Error::other(e.to_string()),
    })
}

/// How long a recorded miss holds: the number in `$cache/cache_miss_s`, as elfutils reads it.
/// The file is read, never created (elfutils creates it when it cleans the cache).
pub(crate) fn miss_ttl(root: &Path) -> Duration {
    let Ok(f) = open_no_follow(&root.join("cache_miss_s")) else { return DEFAULT_MISS_TTL };
    let mut text = String::new();
    let _ = io::Read::read_to_string(&mut io::Read::take(f, 32), &mut text);
    text.trim().parse::<u64>().map(Duration::from_secs).unwrap_or(DEFAULT_MISS_TTL)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;
    use std::os::unix::fs::PermissionsExt;

    fn exe_and_id() -> Option<(PathBuf, Vec<u8>)> {
        let p = std::env::current_exe().ok()?;
        let id = ElfInfo::open(&p).ok()?.build_id()?.to_vec();
        Some((p, id))
    }

    fn store(entry: &CacheEntry, bytes: &[u8]) {
        let dir = entry.prepare().unwrap();
        let (tmp, mut file) = entry.temp(&dir).unwrap();
        io::Write::write_all(&mut file, bytes).unwrap();
        entry.keep(&dir, &tmp, &file).unwrap();
    }

    #[test]
    fn layout_modes_and_round_trip() {
        let Some((exe, id)) = exe_and_id() else { return };
        let root = tempfile::tempdir().unwrap();
        let cache = root.path().join("a/b");
        let e = CacheEntry::new(&cache, &crate::modules::hex(&id));
        assert!(matches!(e.lookup(&id, DEFAULT_MISS_TTL), Lookup::Absent));
        store(&e, &std::fs::read(&exe).unwrap());
        assert_eq!(e.file, cache.join(crate::modules::hex(&id)).join("debuginfo"));
        let mode = |p: &Path| p.metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&e.dir), 0o700);
        assert_eq!(mode(&e.file), 0o400);
        assert!(matches!(e.lookup(&id, DEFAULT_MISS_TTL), Lookup::Hit(_)));
        // Only `debuginfo` is left in the entry's folder: no temporary file.
        assert_eq!(std::fs::read_dir(&e.dir).unwrap().count(), 1);
    }

    #[test]
    fn wrong_or_corrupt_entries_are_unusable() {
        let Some((_, id)) = exe_and_id() else { return };
        let root = tempfile::tempdir().unwrap();
        let e = CacheEntry::new(root.path(), &crate::modules::hex(&id));
        store(&e, b"not an elf file at all");
        match e.lookup(&id, DEFAULT_MISS_TTL) {
            Lookup::Unusable(why) => assert!(why.ends_with("it is not an ELF file"), "{why}"),
            _ => panic!("a corrupt entry was used"),
        }
        let mut other = id.clone();
        other[0] ^= 1;
        let e2 = CacheEntry::new(root.path(), &crate::modules::hex(&other));
        store(&e2, &std::fs::read(std::env::current_exe().unwrap()).unwrap());
        assert!(matches!(e2.lookup(&other, DEFAULT_MISS_TTL), Lookup::Unusable(w) if w.contains("its build-id is")));
    }

    #[test]
    fn links_and_fifos_are_not_followed() {
        let Some((exe, id)) = exe_and_id() else { return };
        let root = tempfile::tempdir().unwrap();
        let h = crate::modules::hex(&id);
        // A link to a perfectly good file is still not used.
        let e = CacheEntry::new(root.path(), &h);
        e.prepare().unwrap();
        symlink(&exe, &e.file).unwrap();
        assert!(matches!(e.lookup(&id, DEFAULT_MISS_TTL), Lookup::Unusable(w) if w.contains("symbolic link")));
        // Keeping a new file replaces the link itself, not its target.
        store(&e, &std::fs::read(&exe).unwrap());
        assert!(!e.file.symlink_metadata().unwrap().file_type().is_symlink());
        assert!(matches!(e.lookup(&id, DEFAULT_MISS_TTL), Lookup::Hit(_)));
        // A FIFO: opened without blocking, refused.
        std::fs::remove_file(&e.file).unwrap();
        rustix::fs::mknodat(rustix::fs::CWD, &e.file, rustix::fs::FileType::Fifo, rustix::fs::Mode::from(0o600), 0)
            .unwrap();
        assert!(matches!(e.lookup(&id, DEFAULT_MISS_TTL), Lookup::Unusable(w) if w.contains("not a regular file")));
        // The entry's folder a link: neither read nor written.
        let elsewhere = tempfile::tempdir().unwrap();
        let other_root = tempfile::tempdir().unwrap();
        symlink(elsewhere.path(), other_root.path().join(&h)).unwrap();
        let e = CacheEntry::new(other_root.path(), &h);
        assert!(matches!(e.lookup(&id, DEFAULT_MISS_TTL), Lookup::Refused(_)));
        assert!(e.prepare().is_err());
    }

    #[test]
    fn misses_expire() {
        let root = tempfile::tempdir().unwrap();
        let e = CacheEntry::new(root.path(), "abcd");
        e.record_miss().unwrap();
        assert_eq!(e.file.metadata().unwrap().len(), 0);
        assert!(matches!(e.lookup(b"\xab\xcd", DEFAULT_MISS_TTL), Lookup::Miss { .. }));
        let old = SystemTime::now() - Duration::from_secs(700);
        File::open(&e.file).unwrap().set_modified(old).unwrap();
        assert!(matches!(e.lookup(b"\xab\xcd", DEFAULT_MISS_TTL), Lookup::Absent));
        std::fs::write(root.path().join("cache_miss_s"), "1000\n").unwrap();
        assert_eq!(miss_ttl(root.path()), Duration::from_secs(1000));
        assert!(matches!(e.lookup(b"\xab\xcd", miss_ttl(root.path())), Lookup::Miss { .. }));
        // A new miss replaces the expired one.
        e.record_miss().unwrap();
        assert!(
            matches!(e.lookup(b"\xab\xcd", DEFAULT_MISS_TTL), Lookup::Miss { age } if age < Duration::from_secs(60))
        );
    }
}
