//! The debuginfod cache, laid out as elfutils lays it so that gdb and crashcatch share it:
//! `$cache/<build-id hex>/debuginfo`. Folders are made with mode 0700, files are written under a
//! temporary name in the same folder and renamed into place with mode 0400; an empty file is
//! elfutils' record of a miss, trusted for `$cache/cache_miss_s` seconds (default 600).
//! Nothing planted in the cache is followed: a symbolic link, a FIFO or anything but a regular
//! file is ignored, and a file is used only after its build-id was checked.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::verify::verify;
use crate::modules::ElfInfo;

/// How long elfutils trusts a recorded miss when `cache_miss_s` does not say.
pub const DEFAULT_MISS_TTL: Duration = Duration::from_secs(600);

/// What the cache holds for one build-id.
pub enum Lookup {
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
pub enum PrepareError {
    #[error("cannot create {}: {source}", .path.display())]
    Create {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} is not a folder", .path.display())]
    NotAFolder { path: PathBuf },
}

/// The cache entry of one build-id.
#[derive(Debug, Clone)]
pub struct Entry {
    pub root: PathBuf,
    pub dir: PathBuf,
    pub file: PathBuf,
}

impl Entry {
    /// `hex` must be lowercase hex digits (a build-id), so it cannot name anything outside `root`.
    pub fn new(root: &Path, hex: &str) -> Entry {
        debug_assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()));
        let dir = root.join(hex);
        let file = dir.join("debuginfo");
        Entry { root: root.to_path_buf(), dir, file }
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

    /// Makes the cache folder and the entry's folder (mode 0700) and checks that the entry's
    /// folder is a real folder, so that a temporary file can be created in it.
    pub fn prepare(&self) -> Result<(), PrepareError> {
        let create = |path: &Path, source| PrepareError::Create { path: path.to_path_buf(), source };
        DirBuilder::new().recursive(true).mode(0o700).create(&self.root).map_err(|e| create(&self.root, e))?;
        match DirBuilder::new().mode(0o700).create(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => match self.dir.symlink_metadata() {
                Ok(m) if m.is_dir() => Ok(()),
                _ => Err(PrepareError::NotAFolder { path: self.dir.clone() }),
            },
            Err(e) => Err(create(&self.dir, e)),
        }
    }

    /// A new temporary file beside the entry (`debuginfo.XXXXXX`, mode 0600, O_EXCL), removed
    /// when dropped unless kept.
    pub fn temp(&self) -> io::Result<tempfile::NamedTempFile> {
        tempfile::Builder::new().prefix("debuginfo.").rand_bytes(6).tempfile_in(&self.dir)
    }

    /// Renames a finished (and verified) temporary file into place, read-only as elfutils
    /// leaves its files. A link or file already at the name is replaced, never followed.
    pub fn keep(&self, tmp: tempfile::NamedTempFile) -> io::Result<()> {
        tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o400))?;
        tmp.persist(&self.file).map(drop).map_err(|e| e.error)
    }

    /// Records that no server had the file: an empty file, as elfutils writes one.
    pub fn record_miss(&self) -> io::Result<()> {
        self.prepare().map_err(io::Error::other)?;
        let tmp = self.temp()?;
        self.keep(tmp)
    }
}

/// Opens for reading without following a final symbolic link and without blocking on a FIFO.
fn open_no_follow(path: &Path) -> io::Result<File> {
    OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC).open(path)
}

/// How long a recorded miss holds: the number in `$cache/cache_miss_s`, as elfutils reads it.
/// The file is read, never created (elfutils creates it when it cleans the cache).
pub fn miss_ttl(root: &Path) -> Duration {
    let Ok(f) = open_no_follow(&root.join("cache_miss_s")) else { return DEFAULT_MISS_TTL };
    let mut text = String::new();
    let _ = io::Read::read_to_string(&mut io::Read::take(f, 32), &mut text);
    text.trim().parse::<u64>().map(Duration::from_secs).unwrap_or(DEFAULT_MISS_TTL)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn exe_and_id() -> Option<(PathBuf, Vec<u8>)> {
        let p = std::env::current_exe().ok()?;
        let id = ElfInfo::open(&p).ok()?.build_id()?.to_vec();
        Some((p, id))
    }

    fn store(entry: &Entry, bytes: &[u8]) {
        entry.prepare().unwrap();
        let mut t = entry.temp().unwrap();
        io::Write::write_all(&mut t, bytes).unwrap();
        entry.keep(t).unwrap();
    }

    #[test]
    fn layout_modes_and_round_trip() {
        let Some((exe, id)) = exe_and_id() else { return };
        let root = tempfile::tempdir().unwrap();
        let cache = root.path().join("a/b");
        let e = Entry::new(&cache, &crate::modules::hex(&id));
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
        let e = Entry::new(root.path(), &crate::modules::hex(&id));
        store(&e, b"not an elf file at all");
        match e.lookup(&id, DEFAULT_MISS_TTL) {
            Lookup::Unusable(why) => assert!(why.ends_with("it is not an ELF file"), "{why}"),
            _ => panic!("a corrupt entry was used"),
        }
        let mut other = id.clone();
        other[0] ^= 1;
        let e2 = Entry::new(root.path(), &crate::modules::hex(&other));
        store(&e2, &std::fs::read(std::env::current_exe().unwrap()).unwrap());
        assert!(matches!(e2.lookup(&other, DEFAULT_MISS_TTL), Lookup::Unusable(w) if w.contains("its build-id is")));
    }

    #[test]
    fn links_and_fifos_are_not_followed() {
        let Some((exe, id)) = exe_and_id() else { return };
        let root = tempfile::tempdir().unwrap();
        let h = crate::modules::hex(&id);
        // A link to a perfectly good file is still not used.
        let e = Entry::new(root.path(), &h);
        e.prepare().unwrap();
        symlink(&exe, &e.file).unwrap();
        assert!(matches!(e.lookup(&id, DEFAULT_MISS_TTL), Lookup::Unusable(w) if w.contains("symbolic link")));
        // Keeping a new file replaces the link itself, not its target.
        store(&e, &std::fs::read(&exe).unwrap());
        assert!(!e.file.symlink_metadata().unwrap().file_type().is_symlink());
        assert!(matches!(e.lookup(&id, DEFAULT_MISS_TTL), Lookup::Hit(_)));
        // A FIFO: opened without blocking, refused.
        std::fs::remove_file(&e.file).unwrap();
        let c = std::ffi::CString::new(e.file.as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(matches!(e.lookup(&id, DEFAULT_MISS_TTL), Lookup::Unusable(w) if w.contains("not a regular file")));
        // The entry's folder a link: neither read nor written.
        let elsewhere = tempfile::tempdir().unwrap();
        let other_root = tempfile::tempdir().unwrap();
        symlink(elsewhere.path(), other_root.path().join(&h)).unwrap();
        let e = Entry::new(other_root.path(), &h);
        assert!(matches!(e.lookup(&id, DEFAULT_MISS_TTL), Lookup::Refused(_)));
        assert!(e.prepare().is_err());
    }

    #[test]
    fn misses_expire() {
        let root = tempfile::tempdir().unwrap();
        let e = Entry::new(root.path(), "abcd");
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
