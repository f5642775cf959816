//! The one door out: every file crashcatch writes (reports, cores, the JUnit file, the job
//! summary, the debuginfod cache, their temporary files) is made here, relative to a folder
//! descriptor.
//!
//! [`OutDir::open`] walks the folder's path one component at a time with `O_NOFOLLOW`,
//! creating what is missing with mode 0700. A symbolic link on the way is followed only when
//! nobody but root or crashcatch's own user could have put it there (it is theirs, in a folder
//! only they can change); any other link is refused with one line, so a target that owns a
//! folder above `--output-dir` cannot redirect the reports into a folder of root's choosing.
//! Once open, the folder is written through its descriptor only: files are created
//! `O_EXCL | O_NOFOLLOW` under an unpredictable temporary name and renamed into place
//! (`RENAME_NOREPLACE` for new files), non-blocking, regular files only, with the documented
//! modes. A folder that someone else can change is written into the same way: they can
//! delete a report there, never redirect, read or replace it.
//!
//! Who owns the files: crashcatch's user, unless crashcatch runs as root and the folder belongs
//! to another user *and* every folder above it can be changed only by root (a bind-mounted
//! `/reports` owned by the host's uid 1001 in a container): that user is who the folder was
//! made for, and the files are given to them (mode unchanged), so they can read their reports.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Gid, Mode as RawMode, OFlags, RenameFlags, Uid, CWD};

/// Why a folder could not be opened for writing.
#[derive(Debug, thiserror::Error)]
pub enum OpenDirError {
    #[error("could not create {}: {source}", path.display())]
    Create { path: PathBuf, source: io::Error },
    #[error("{}: {why}", path.display())]
    Refused { path: PathBuf, why: String },
}

/// Symbolic links followed in one path, at most (the kernel's own limit).
const MAX_LINKS: usize = 40;

/// A file's permission bits and owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileMode {
    pub bits: u32,
    /// uid and gid to give the file (root only; best effort). None: the folder's recipient,
    /// if it has one, else crashcatch's user.
    pub owner: Option<(u32, u32)>,
}

impl FileMode {
    /// 0600 (reports hold command lines, paths and source lines).
    pub const PRIVATE: FileMode = FileMode { bits: 0o600, owner: None };
}

/// What a new file may do to one already at its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// Fail with `AlreadyExists`.
    New,
    /// Replace it (the name: a symbolic link there is replaced, never followed).
    Replace,
}

/// A folder opened for writing, safely (see the module's documentation).
#[derive(Debug)]
pub struct OutDir {
    fd: OwnedFd,
    path: PathBuf,
    /// Who new files are given to (see the module's documentation).
    recipient: Option<(u32, u32)>,
}

/// A file that was read back from an output folder (the JUnit file pytest wrote).
#[derive(Debug)]
pub struct Existing {
    pub bytes: Vec<u8>,
    /// Permission bits.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// Why a file in an output folder was not read back.
#[derive(Debug, thiserror::Error)]
pub enum ReadBackError {
    #[error("it is a symbolic link")]
    Symlink,
    #[error("it is not a regular file but {0}")]
    NotRegular(&'static str),
    #[error("it is larger than {} MiB", .0 >> 20)]
    TooLarge(u64),
    #[error("it could not be read: {0}")]
    Io(io::Error),
}

fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Whether the folder `st` describes can be changed only by root or by crashcatch's user.
fn only_ours(st: &rustix::fs::Stat) -> bool {
    let owner_ok = st.st_uid == 0 || st.st_uid == euid();
    let others_write = st.st_mode & 0o022 != 0;
    let sticky = st.st_mode & 0o1000 != 0;
    owner_ok && (!others_write || sticky)
}

fn dir_flags() -> OFlags {
    OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

impl OutDir {
    /// Opens the folder `path` (relative to the working folder when relative), creating the
    /// missing components (mode 0700) when `create`.
    pub fn open(path: &Path, create: bool) -> Result<OutDir, OpenDirError> {
        let fail = |why: String| OpenDirError::Refused { path: path.to_path_buf(), why };
        let start = if path.is_absolute() { "/" } else { "." };
        let mut cur = rustix::fs::openat(CWD, start, dir_flags(), RawMode::empty())
            .map_err(|e| fail(format!("cannot open {start}: {e}")))?;
        let mut rest: Vec<std::ffi::OsString> =
            path.components().rev().filter_map(component_name).map(|c| c.to_os_string()).collect();
        let mut parents_ours = true;
        let mut links = 0usize;
        while let Some(name) = rest.pop() {
            let here = rustix::fs::fstat(&cur).map_err(|e| fail(format!("cannot stat a folder: {e}")))?;
            let here_ours = only_ours(&here);
            match rustix::fs::openat(&cur, name.as_os_str(), dir_flags(), RawMode::empty()) {
                Ok(fd) => {
                    parents_ours &= here_ours;
                    cur = fd;
                }
                Err(rustix::io::Errno::NOENT) if create => {
                    match rustix::fs::mkdirat(&cur, name.as_os_str(), RawMode::from_raw_mode(0o700)) {
                        Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                        Err(e) => return Err(OpenDirError::Create { path: path.to_path_buf(), source: e.into() }),
                    }
                    parents_ours &= here_ours;
                    cur = rustix::fs::openat(&cur, name.as_os_str(), dir_flags(), RawMode::empty())
                        .map_err(|e| OpenDirError::Create { path: path.to_path_buf(), source: e.into() })?;
                }
                Err(rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR) => {
                    let st = rustix::fs::statat(&cur, name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW)
                        .map_err(|e| fail(e.to_string()))?;
                    if FileType::from_raw_mode(st.st_mode) != FileType::Symlink {
                        return Err(fail(format!("{} is not a folder", name.to_string_lossy())));
                    }
                    let link_ours = st.st_uid == 0 || st.st_uid == euid();
                    if !(here_ours && link_ours) {
                        return Err(fail(format!(
                            "{} is a symbolic link that uid {} could have made (in a folder others can change): \
                             refused; give the folder it points to",
                            name.to_string_lossy(),
                            st.st_uid
                        )));
                    }
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(fail("too many symbolic links".into()));
                    }
                    let target =
                        rustix::fs::readlinkat(&cur, name.as_os_str(), Vec::new()).map_err(|e| fail(e.to_string()))?;
                    let target =
                        PathBuf::from(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(target.as_bytes()));
                    if target.is_absolute() {
                        cur = rustix::fs::openat(CWD, "/", dir_flags(), RawMode::empty())
                            .map_err(|e| fail(e.to_string()))?;
                    }
                    rest.extend(target.components().rev().filter_map(component_name).map(|c| c.to_os_string()));
                }
                Err(rustix::io::Errno::NOENT) => {
                    return Err(OpenDirError::Create {
                        path: path.to_path_buf(),
                        source: io::Error::from(io::ErrorKind::NotFound),
                    })
                }
                Err(e) => return Err(fail(e.to_string())),
            }
        }
        let st = rustix::fs::fstat(&cur).map_err(|e| fail(e.to_string()))?;
        let me = euid();
        let recipient = (me == 0 && st.st_uid != 0 && parents_ours).then_some((st.st_uid, st.st_gid));
        Ok(OutDir { fd: cur, path: path.to_path_buf(), recipient })
    }

    /// The folder of the file `path` (made when missing and `create`) and the file's name.
    pub fn for_file(path: &Path, create: bool) -> Result<(OutDir, String), OpenDirError> {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| OpenDirError::Refused { path: path.to_path_buf(), why: "not a file name".into() })?;
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        Ok((OutDir::open(parent, create)?, name.to_string()))
    }

    /// The path a file `name` here is shown as.
    pub fn path_of(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Whether anything (a link included) is at `name`.
    pub fn has(&self, name: &str) -> bool {
        rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW).is_ok()
    }

    /// Writes `data` as `name`, through a temporary file renamed into place.
    pub fn write(&self, name: &str, data: &[u8], mode: FileMode, place: Place) -> io::Result<()> {
        let (tmp, mut file) = self.temporary(name, mode)?;
        let result = file.write_all(data).and_then(|()| file.flush()).and_then(|()| self.rename(&tmp, name, place));
        if result.is_err() {
            let _ = rustix::fs::unlinkat(&self.fd, tmp.as_str(), AtFlags::empty());
        }
        result
    }

    /// Creates the new file `name` and hands it over for writing (a core).
    pub fn create_new(&self, name: &str, mode: FileMode) -> io::Result<File> {
        // Read-write: a temporary file is read back before it is kept (debuginfod verifies it).
        let flags = OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&self.fd, name, flags, RawMode::from_raw_mode(mode.bits & 0o777))?;
        self.settle(&fd, mode)?;
        Ok(File::from(fd))
    }

    /// Appends `data` to the file `name` (created 0644 when missing): the runner's job summary.
    /// A symbolic link, FIFO or anything but a regular file there is refused, without blocking.
    pub fn append(&self, name: &str, data: &[u8]) -> io::Result<()> {
        let flags = OFlags::WRONLY
            | OFlags::APPEND
            | OFlags::CREATE
            | OFlags::NOFOLLOW
            | OFlags::NONBLOCK
            | OFlags::NOCTTY
            | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&self.fd, name, flags, RawMode::from_raw_mode(0o644))?;
        let st = rustix::fs::fstat(&fd)?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"));
        }
        File::from(fd).write_all(data)
    }

    /// Reads the file `name` back, up to `cap` bytes (None: nothing there).
    pub fn read(&self, name: &str, cap: u64) -> Result<Option<Existing>, ReadBackError> {
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
        let fd = match rustix::fs::openat(&self.fd, name, flags, RawMode::empty()) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) => return Ok(None),
            Err(rustix::io::Errno::LOOP) => return Err(ReadBackError::Symlink),
            Err(e) => return Err(ReadBackError::Io(e.into())),
        };
        let st = rustix::fs::fstat(&fd).map_err(|e| ReadBackError::Io(e.into()))?;
        let kind = FileType::from_raw_mode(st.st_mode);
        if kind != FileType::RegularFile {
            return Err(ReadBackError::NotRegular(kind_name(kind)));
        }
        if st.st_size as u64 > cap {
            return Err(ReadBackError::TooLarge(cap));
        }
        let mut bytes = Vec::with_capacity(st.st_size as usize);
        // It may grow while it is read: never more than the cap.
        File::from(fd).take(cap + 1).read_to_end(&mut bytes).map_err(ReadBackError::Io)?;
        if bytes.len() as u64 > cap {
            return Err(ReadBackError::TooLarge(cap));
        }
        Ok(Some(Existing { bytes, mode: st.st_mode & 0o7777, uid: st.st_uid, gid: st.st_gid }))
    }

    /// A file with no name in this folder (O_TMPFILE), gone when closed: scratch space, such
    /// as a decompressed core.
    pub fn anonymous(&self) -> io::Result<File> {
        let flags = OFlags::RDWR | OFlags::TMPFILE | OFlags::EXCL | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&self.fd, ".", flags, RawMode::from_raw_mode(0o600))?;
        Ok(File::from(fd))
    }

    /// Removes the file `name` (never a folder).
    pub fn remove(&self, name: &str) -> io::Result<()> {
        rustix::fs::unlinkat(&self.fd, name, AtFlags::empty()).map_err(Into::into)
    }

    /// `.NAME.<random>.tmp`, created new, for writing a file that [`OutDir::persist`] then
    /// puts in place (or [`OutDir::remove`] drops).
    pub fn temporary(&self, name: &str, mode: FileMode) -> io::Result<(String, File)> {
        let mut last = io::Error::new(io::ErrorKind::AlreadyExists, "no free temporary name");
        for _ in 0..16 {
            let tmp = format!(".{name}.{}.tmp", random_suffix());
            match self.create_new(&tmp, mode) {
                Ok(f) => return Ok((tmp, f)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = e,
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }

    /// The exact bits (the umask took some at creation) and the owner.
    fn settle(&self, fd: &OwnedFd, mode: FileMode) -> io::Result<()> {
        rustix::fs::fchmod(fd, RawMode::from_raw_mode(mode.bits & 0o7777))?;
        if let Some((uid, gid)) = mode.owner.or(self.recipient) {
            let _ = rustix::fs::fchown(fd.as_fd(), Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)));
        }
        Ok(())
    }

    /// Puts the finished temporary file `tmp` in place as `name`.
    pub fn persist(&self, tmp: &str, name: &str, place: Place) -> io::Result<()> {
        self.rename(tmp, name, place)
    }

    fn rename(&self, tmp: &str, name: &str, place: Place) -> io::Result<()> {
        match place {
            Place::Replace => rustix::fs::renameat(&self.fd, tmp, &self.fd, name).map_err(Into::into),
            Place::New => match rustix::fs::renameat_with(&self.fd, tmp, &self.fd, name, RenameFlags::NOREPLACE) {
                Ok(()) => Ok(()),
                // A file system without RENAME_NOREPLACE: link(2) never replaces either.
                Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) => {
                    rustix::fs::linkat(&self.fd, tmp, &self.fd, name, AtFlags::empty())?;
                    rustix::fs::unlinkat(&self.fd, tmp, AtFlags::empty()).map_err(Into::into)
                }
                Err(e) => Err(e.into()),
            },
        }
    }
}

/// A path component to walk: names and `..` (`.` and the root are nothing to walk).
fn component_name(c: Component<'_>) -> Option<&std::ffi::OsStr> {
    match c {
        Component::Normal(n) => Some(n),
        Component::ParentDir => Some("..".as_ref()),
        Component::CurDir | Component::RootDir | Component::Prefix(_) => None,
    }
}

fn kind_name(t: FileType) -> &'static str {
    match t {
        FileType::Fifo => "a FIFO",
        FileType::Directory => "a directory",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        FileType::Socket => "a socket",
        FileType::Symlink => "a symbolic link",
        _ => "something else",
    }
}

/// 16 hex digits from getrandom(2); from the clock and the pid should it fail.
pub fn random_suffix() -> String {
    let mut b = [0u8; 8];
    let v = match rustix::rand::getrandom(&mut b, rustix::rand::GetRandomFlags::NONBLOCK) {
        Ok(8) => u64::from_ne_bytes(b),
        _ => {
            let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            (t.as_nanos() as u64).rotate_left(17) ^ u64::from(std::process::id()).wrapping_mul(0x9e37_79b9_7f4a_7c15)
        }
    };
    format!("{v:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    #[test]
    fn new_never_replaces_and_replace_never_follows() {
        let dir = tempfile::tempdir().unwrap();
        let out = OutDir::open(dir.path(), false).unwrap();
        out.write("r.json", b"one", FileMode::PRIVATE, Place::New).unwrap();
        let p = dir.path().join("r.json");
        assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o777, 0o600);
        let e = out.write("r.json", b"two", FileMode::PRIVATE, Place::New).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&p).unwrap(), b"one");
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join("j.xml")).unwrap();
        out.write("j.xml", b"<x/>", FileMode { bits: 0o640, owner: None }, Place::Replace).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        let m = std::fs::symlink_metadata(dir.path().join("j.xml")).unwrap();
        assert!(m.file_type().is_file());
        assert_eq!(m.mode() & 0o777, 0o640);
        // Appending and reading back refuse links and FIFOs, without blocking.
        assert!(out.append("j.xml", b"more").is_ok());
        std::os::unix::fs::symlink(&victim, dir.path().join("l")).unwrap();
        assert!(out.append("l", b"x").is_err());
        assert!(matches!(out.read("l", 100), Err(ReadBackError::Symlink)));
        rustix::fs::mknodat(
            rustix::fs::CWD,
            dir.path().join("f"),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from(0o600),
            0,
        )
        .unwrap();
        assert!(out.append("f", b"x").is_err());
        assert!(matches!(out.read("f", 100), Err(ReadBackError::NotRegular("a FIFO"))));
        assert!(out.read("none", 100).unwrap().is_none());
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    }

    #[test]
    fn creates_missing_folders_and_follows_only_links_nobody_else_could_make() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("a/b/c");
        OutDir::open(&deep, true).unwrap();
        assert_eq!(std::fs::metadata(&deep).unwrap().mode() & 0o777, 0o700);
        // A link of our own, in a folder of our own: followed.
        std::os::unix::fs::symlink(&deep, dir.path().join("mine")).unwrap();
        let out = OutDir::open(&dir.path().join("mine"), false).unwrap();
        out.write("x", b"1", FileMode::PRIVATE, Place::New).unwrap();
        assert!(deep.join("x").exists());
        // The same link in a folder anyone may write (not sticky): refused.
        let open = dir.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        std::os::unix::fs::symlink(&deep, open.join("reports")).unwrap();
        let e = OutDir::open(&open.join("reports"), true).unwrap_err().to_string();
        assert!(e.contains("symbolic link") && e.contains("refused"), "{e}");
        // A file in the way is no folder.
        std::fs::write(dir.path().join("file"), "").unwrap();
        assert!(OutDir::open(&dir.path().join("file/x"), true).is_err());
    }
}
