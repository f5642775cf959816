//! Opening a file as the target process would: its path resolved inside the target's root
//! (never escaping it through `..`, an absolute symlink or a /proc magic link), read-only,
//! without blocking, and only if it is a regular file on a real filesystem (no FIFO, device,
//! socket, /proc or /sys file). Whose rights the open uses is `rights.rs`'s business.

use std::fs::File;
use std::os::fd::OwnedFd;

use rustix::fs::{FileType, Mode, OFlags, ResolveFlags};

/// Symlinks followed in one path before giving up (the kernel's own limit is 40).
const MAX_SYMLINKS: usize = 40;
/// Longest path accepted (PATH_MAX).
const MAX_PATH: usize = 4096;

/// Filesystems whose "regular files" are not files: reading them can block, consume state or
/// disclose the kernel's (`/proc/kmsg`, `/proc/kallsyms`, `/sys/kernel/...`).
const PSEUDO_FILESYSTEMS: [i64; 14] = [
    0x9fa0,      // proc
    0x6265_6572, // sysfs
    0x6462_6720, // debugfs
    0x7472_6163, // tracefs
    0x7363_6673, // securityfs
    0x0027_e0eb, // cgroup
    0x6367_7270, // cgroup2
    0x6265_6570, // configfs
    0xcafe_4a11, // bpf
    0xde5e_81e4, // efivarfs
    0x6165_676c, // pstore
    0x6573_5543, // fusectl
    0x4249_4e4d, // binfmt_misc
    0x1cd1,      // devpts
];

/// Why a file was not opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// A system call failed (which, and why).
    #[error("{0}")]
    System(String),
    /// Not a regular file.
    #[error("not a regular file")]
    NotRegular,
    /// A kernel pseudo-file (/proc, /sys).
    #[error("a kernel pseudo-file (/proc, /sys, ...)")]
    PseudoFile,
    /// An empty path, one too long, or one with a NUL byte.
    #[error("path refused (empty, too long or with a NUL byte)")]
    BadPath,
    /// Too many symbolic links on the way.
    #[error("too many symbolic links")]
    SymlinkLoop,
    /// The process's own rights could not be taken (why).
    #[error("cannot be opened with the process's own rights ({0})")]
    Rights(String),
    /// Opening took too long (a hung mount).
    #[error("opening it took too long")]
    Timeout,
    /// No such file.
    #[error("no such file")]
    NotFound,
}

fn errno_error(call: &str, e: rustix::io::Errno) -> OpenError {
    match e {
        rustix::io::Errno::NOENT => OpenError::NotFound,
        rustix::io::Errno::LOOP => OpenError::SymlinkLoop,
        e => OpenError::System(format!("{call}: {}", std::io::Error::from(e))),
    }
}

/// Opens a folder (a process's root or working folder through /proc) as a handle to resolve
/// paths under. Done with crashcatch's own rights: /proc/PID/root needs the ptrace access check.
pub fn open_dir(path: &std::path::Path) -> Result<OwnedFd, OpenError> {
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    rustix::fs::open(path, flags, Mode::empty()).map_err(|e| errno_error("open", e))
}

/// Opens `path` (a path crashcatch resolves with its own view: a core's files under the
/// sysroot, a report file) read-only and without blocking, if it is a regular file on a real
/// filesystem. A watched read (process/blocking.rs).
pub fn open_regular(path: &std::path::Path) -> Result<File, OpenError> {
    open_regular_with(path, open_flags())
}

/// [`open_regular`], but a symbolic link as the last component is refused, not followed (a
/// file in a folder others may write to: the debuginfod cache).
pub fn open_regular_no_follow(path: &std::path::Path) -> Result<File, OpenError> {
    open_regular_with(path, open_flags() | OFlags::NOFOLLOW)
}

fn open_regular_with(path: &std::path::Path, flags: OFlags) -> Result<File, OpenError> {
    if path.as_os_str().as_encoded_bytes().contains(&0) {
        return Err(OpenError::BadPath);
    }
    let open = || check_regular(rustix::fs::open(path, flags, Mode::empty()).map_err(|e| errno_error("open", e))?);
    super::blocking::file(path, open).unwrap_or(Err(OpenError::Timeout))
}

/// Reads a kernel file about a process (`/proc/PID/NAME`, `/proc/thread-self/status`,
/// `/proc/sys/...`), at most `cap` bytes, as a watched read: some of them (`cmdline`,
/// `environ`, `auxv`, `mem`) read the process's own memory, which it can make never answer.
pub fn read_proc(path: &std::path::Path, cap: u64) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    super::blocking::file(path, || open_proc(path).ok()?.take(cap).read_to_end(&mut out).ok()).flatten()?;
    Some(out)
}

/// Opens a kernel file about a process (see [`read_proc`]) read-only; /proc only.
pub fn open_proc(path: &std::path::Path) -> Result<File, OpenError> {
    if !path.starts_with("/proc/") || path.as_os_str().as_encoded_bytes().contains(&0) {
        return Err(OpenError::BadPath);
    }
    let flags = OFlags::RDONLY | OFlags::NOCTTY | OFlags::CLOEXEC;
    Ok(File::from(rustix::fs::open(path, flags, Mode::empty()).map_err(|e| errno_error("open", e))?))
}

/// How a path is resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolver {
    /// openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) (Linux 5.6+).
    Openat2,
    /// A walk one component at a time with O_NOFOLLOW, following symlinks by hand inside the
    /// root (for kernels or seccomp profiles without openat2).
    Walk,
}

/// Opens `path` read-only as if `root` were `/`, with the calling thread's rights. A relative
/// `path` is taken from `root` too (callers pass the working folder as `root` for those).
pub fn open_in_root(root: &OwnedFd, path: &str, resolver: Resolver) -> Result<File, OpenError> {
    if path.is_empty() || path.len() > MAX_PATH || path.contains('\0') {
        return Err(OpenError::BadPath);
    }
    let fd = match resolver {
        Resolver::Openat2 => match openat2_in_root(root, path) {
            Err(Openat2Error::Unsupported) => walk_in_root(root, path)?,
            Err(Openat2Error::Open(e)) => return Err(e),
            Ok(fd) => fd,
        },
        Resolver::Walk => walk_in_root(root, path)?,
    };
    check_regular(fd)
}

/// The descriptor, as a `File`, if it is a regular file on a real filesystem.
fn check_regular(fd: OwnedFd) -> Result<File, OpenError> {
    let st = rustix::fs::fstat(&fd).map_err(|e| errno_error("fstat", e))?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
        return Err(OpenError::NotRegular);
    }
    // The kernel's statfs, whose f_type is a C long with every libc (musl's own struct has it
    // unsigned, glibc's signed).
    let fs = rustix::fs::fstatfs(&fd).map_err(|e| errno_error("fstatfs", e))?;
    if PSEUDO_FILESYSTEMS.contains(&fs.f_type) {
        return Err(OpenError::PseudoFile);
    }
    Ok(File::from(fd))
}

/// Read-only, never blocking on a FIFO, never taking a terminal, closed on exec.
fn open_flags() -> OFlags {
    OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC
}

enum Openat2Error {
    /// No openat2 here (kernel before 5.6: ENOSYS; a seccomp profile that refuses unknown
    /// calls: ENOSYS or EPERM, which a read-only open never otherwise returns).
    Unsupported,
    Open(OpenError),
}

fn openat2_in_root(dir: &OwnedFd, path: &str) -> Result<OwnedFd, Openat2Error> {
    if path.contains('\0') {
        return Err(Openat2Error::Open(OpenError::BadPath));
    }
    let resolve = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
    rustix::fs::openat2(dir, path, open_flags(), Mode::empty(), resolve).map_err(|e| match e {
        rustix::io::Errno::NOSYS | rustix::io::Errno::PERM => Openat2Error::Unsupported,
        e => Openat2Error::Open(errno_error("openat2", e)),
    })
}

fn openat(dir: &OwnedFd, name: &str, flags: OFlags) -> Result<OwnedFd, OpenError> {
    if name.contains('\0') {
        return Err(OpenError::BadPath);
    }
    rustix::fs::openat(dir, name, flags | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| errno_error("openat", e))
}

/// The target of the symlink `name` in `dir`, if it is one.
fn readlink_at(dir: &OwnedFd, name: &str) -> Option<String> {
    let target = rustix::fs::readlinkat(dir, name, Vec::new()).ok()?;
    let bytes = target.as_bytes();
    (!bytes.is_empty() && bytes.len() < MAX_PATH).then(|| String::from_utf8_lossy(bytes).into_owned())
}

/// RESOLVE_IN_ROOT by hand: components are opened one at a time with O_NOFOLLOW; `..` never
/// goes above the root; a symlink's target is spliced into the rest of the path (an absolute
/// one restarts at the root). Magic links do not arise: nothing is followed by the kernel.
fn walk_in_root(root: &OwnedFd, path: &str) -> Result<OwnedFd, OpenError> {
    let dup = |fd: &OwnedFd| fd.try_clone().map_err(|e| OpenError::System(format!("dup: {e}")));
    // The folders from the root down to the current one (the root is never popped).
    let mut stack: Vec<OwnedFd> = vec![dup(root)?];
    let mut rest: Vec<String> = components(path).rev().collect();
    let mut links = 0usize;
    while let Some(name) = rest.pop() {
        match name.as_str() {
            "." => continue,
            ".." => {
                if stack.len() > 1 {
                    stack.pop();
                }
                continue;
            }
            _ => {}
        }
        let here = stack.last().expect("the root is never popped");
        let last = rest.is_empty();
        let flags = if last { open_flags() } else { OFlags::PATH | OFlags::DIRECTORY };
        match openat(here, &name, flags) {
            Ok(fd) if last => return Ok(fd),
            Ok(fd) => stack.push(fd),
            Err(e) => {
                let Some(target) = readlink_at(here, &name) else { return Err(e) };
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(OpenError::SymlinkLoop);
                }
                if target.starts_with('/') {
                    stack.truncate(1);
                }
                rest.extend(components(&target).rev().collect::<Vec<_>>());
            }
        }
    }
    // The path named a folder (or the root): not a file.
    Err(OpenError::NotRegular)
}

fn components(path: &str) -> impl DoubleEndedIterator<Item = String> + '_ {
    path.split('/').filter(|c| !c.is_empty()).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::fs::symlink;

    fn read(f: Result<File, OpenError>) -> Result<String, OpenError> {
        let mut s = String::new();
        f?.read_to_string(&mut s).unwrap();
        Ok(s)
    }

    #[test]
    fn stays_inside_the_root_both_ways() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "secret").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        std::fs::create_dir_all(r.join("app/sub")).unwrap();
        std::fs::write(r.join("app/m.py"), "inside").unwrap();
        std::fs::write(r.join("secret"), "root's own").unwrap();
        symlink(outside.path().join("secret"), r.join("app/abs")).unwrap();
        symlink("../../../../../../../../secret", r.join("app/sub/rel")).unwrap();
        symlink("loop", r.join("loop")).unwrap();
        symlink("/proc/self/root/etc/hostname", r.join("app/magic")).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            r.join("fifo"),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from(0o600),
            0,
        )
        .unwrap();
        let root = open_dir(r).unwrap();
        for how in [Resolver::Openat2, Resolver::Walk] {
            let open = |p: &str| read(open_in_root(&root, p, how));
            assert_eq!(open("/app/m.py").as_deref(), Ok("inside"), "{how:?}");
            assert_eq!(open("app/./sub/../m.py").as_deref(), Ok("inside"), "{how:?}");
            // An absolute symlink and `..` resolve inside the root, never outside it.
            assert_eq!(open("/app/abs").ok(), None, "{how:?}");
            assert_eq!(open("/app/sub/rel").as_deref(), Ok("root's own"), "{how:?}");
            assert_eq!(open("/../../../../secret").as_deref(), Ok("root's own"), "{how:?}");
            assert_eq!(open("/loop"), Err(OpenError::SymlinkLoop), "{how:?}");
            assert!(open("/app/magic").is_err(), "{how:?}");
            // A FIFO is refused without blocking; a folder is not a file.
            assert_eq!(open("/fifo"), Err(OpenError::NotRegular), "{how:?}");
            assert_eq!(open("/app"), Err(OpenError::NotRegular), "{how:?}");
            assert_eq!(open(""), Err(OpenError::BadPath), "{how:?}");
        }
    }

    #[test]
    fn refuses_proc_and_sys_files() {
        let root = open_dir(std::path::Path::new("/")).unwrap();
        for how in [Resolver::Openat2, Resolver::Walk] {
            assert_eq!(open_in_root(&root, "/proc/self/status", how).err(), Some(OpenError::PseudoFile));
            assert_eq!(open_in_root(&root, "/proc/kallsyms", how).err(), Some(OpenError::PseudoFile));
            assert_eq!(open_in_root(&root, "/dev/null", how).err(), Some(OpenError::NotRegular));
        }
    }
}
