//! Writing a file safely, for the reports and the JUnit file: the data goes to a temporary file
//! in the same folder with an unpredictable name, created with O_EXCL|O_NOFOLLOW (a planted
//! symlink or file at that name is never followed or reused) and the given mode, which is then
//! renamed into place: replacing what is there (rename never follows a symlink at the target
//! name), or only where nothing is (renameat2 RENAME_NOREPLACE, else link + unlink).

use std::fs::{File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// What renaming into place may do to a file already at the name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// Fail with `AlreadyExists` if anything is at the name.
    New,
    /// Replace it (the name itself: a symlink there is replaced, not followed).
    Replace,
}

/// Who the file belongs to and its permission bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode {
    pub bits: u32,
    /// uid and gid to give the file (only root can; best effort).
    pub owner: Option<(u32, u32)>,
}

impl Mode {
    /// 0600, owned by crashcatch's user.
    pub const PRIVATE: Mode = Mode { bits: 0o600, owner: None };
}

/// Writes `data` to `path` through a temporary file renamed into place.
pub fn write_file(path: &Path, data: &[u8], mode: Mode, place: Place) -> io::Result<()> {
    let (tmp, mut f) = create_temporary(path, mode.bits)?;
    let res = fill(&mut f, data, mode);
    drop(f);
    let res = res.and_then(|()| rename(&tmp, path, place));
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

fn fill(f: &mut File, data: &[u8], mode: Mode) -> io::Result<()> {
    // The umask may have taken bits away at creation: set exactly these.
    f.set_permissions(Permissions::from_mode(mode.bits & 0o7777))?;
    if let Some((uid, gid)) = mode.owner {
        let _ = std::os::unix::fs::fchown(&*f, Some(uid), Some(gid));
    }
    f.write_all(data)?;
    f.flush()
}

/// `.NAME.<random>.tmp` beside `path`, created new.
fn create_temporary(path: &Path, bits: u32) -> io::Result<(PathBuf, File)> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut last = io::Error::new(io::ErrorKind::AlreadyExists, "no free temporary name");
    for _ in 0..16 {
        let tmp = path.with_file_name(format!(".{name}.{}.tmp", random_suffix()));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(bits & 0o777)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)
        {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

/// 16 hex digits from getrandom(2); from the clock and the pid should it fail. rustix makes
/// the system call itself: glibc 2.17 (the manylinux2014 wheel's floor) has no getrandom().
fn random_suffix() -> String {
    let mut b = [0u8; 8];
    let n = rustix::rand::getrandom(&mut b, rustix::rand::GetRandomFlags::NONBLOCK);
    let v = if n == Ok(b.len()) {
        u64::from_ne_bytes(b)
    } else {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        (t.as_nanos() as u64).rotate_left(17) ^ u64::from(std::process::id()).wrapping_mul(0x9e37_79b9_7f4a_7c15)
    };
    format!("{v:016x}")
}

fn rename(tmp: &Path, path: &Path, place: Place) -> io::Result<()> {
    match place {
        Place::Replace => std::fs::rename(tmp, path),
        Place::New => rename_noreplace(tmp, path),
    }
}

/// renameat2(2) with RENAME_NOREPLACE, made by rustix as a system call: glibc 2.17 (the
/// manylinux2014 wheel's floor) has no renameat2().
fn rename_noreplace(tmp: &Path, path: &Path) -> io::Result<()> {
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    match renameat_with(CWD, tmp, CWD, path, RenameFlags::NOREPLACE) {
        Ok(()) => return Ok(()),
        Err(e) if e != rustix::io::Errno::INVAL && e != rustix::io::Errno::NOSYS => return Err(e.into()),
        Err(_) => {}
    }
    // A file system without RENAME_NOREPLACE: link(2) never replaces either.
    std::fs::hard_link(tmp, path)?;
    std::fs::remove_file(tmp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn new_never_replaces_and_replace_never_follows() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.json");
        write_file(&p, b"one", Mode::PRIVATE, Place::New).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o777, 0o600);
        let e = write_file(&p, b"two", Mode::PRIVATE, Place::New).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&p).unwrap(), b"one");
        // A symlink at the name is replaced by the file, its target untouched.
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let link = dir.path().join("j.xml");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        write_file(&link, b"<x/>", Mode { bits: 0o640, owner: None }, Place::Replace).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        let m = std::fs::symlink_metadata(&link).unwrap();
        assert!(m.file_type().is_file());
        assert_eq!(m.mode() & 0o777, 0o640);
        // Nothing left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 3);
    }
}
