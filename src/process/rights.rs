//! Whose rights a file of the target is opened with: the target's own filesystem uid, gid and
//! supplementary groups, so that crashcatch running as root shows nothing the traced code could
//! not read itself.
//!
//! The opens run on one short-lived thread per report that takes the target's credentials with
//! the raw `setgroups`/`setfsgid`/`setfsuid` system calls. On Linux credentials belong to each
//! thread; glibc's `setgroups()` (and `setuid()` & co.) broadcast the change to every thread of
//! the process (the SIGSETXID dance), which is exactly what must not happen here, so the libc
//! wrappers are not used. Changing the fsuid from 0 to another id also drops the filesystem
//! capabilities (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, ...) of that thread (capabilities(7)).

use std::fs::File;
use std::os::fd::OwnedFd;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use super::files::{open_in_root, OpenError, Resolver};

/// Most supplementary groups taken from /proc/PID/status (the kernel's NGROUPS_MAX is 65536).
const MAX_GROUPS: usize = 65536;
/// How long one open may take before the report goes on without the file (an NFS or FUSE
/// mount that hangs): the thread is abandoned and later opens fail at once.
const OPEN_TIMEOUT: Duration = Duration::from_millis(500);

/// A process's filesystem credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Credentials {
    pub fsuid: u32,
    pub fsgid: u32,
    pub groups: Vec<u32>,
}

impl Credentials {
    /// From the text of /proc/PID/status (`Uid:`/`Gid:` real, effective, saved, fs; `Groups:`).
    pub(crate) fn from_status(text: &str) -> Option<Credentials> {
        let field = |name: &str| {
            text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':').map(str::trim).map(str::to_string))
        };
        let fourth = |v: String| v.split_whitespace().nth(3)?.parse::<u32>().ok();
        let fsuid = fourth(field("Uid")?)?;
        let fsgid = fourth(field("Gid")?)?;
        let mut groups = Vec::new();
        for g in field("Groups").unwrap_or_default().split_whitespace().take(MAX_GROUPS) {
            groups.push(g.parse().ok()?);
        }
        groups.sort_unstable();
        Some(Credentials { fsuid, fsgid, groups })
    }

    /// The credentials of process `pid`.
    pub fn of(pid: i32) -> Option<Credentials> {
        Self::from_status(&super::live::proc_text(pid, "status")?)
    }

    /// This thread's own.
    pub(crate) fn mine() -> Option<Credentials> {
        let bytes = super::files::read_proc(std::path::Path::new("/proc/thread-self/status"), 1 << 20)?;
        Self::from_status(&String::from_utf8_lossy(&bytes))
    }

    /// Makes the calling thread (only) act with these credentials on files. Every call is
    /// checked: setfsuid/setfsgid report no error, so the id is read back.
    fn take(&self) -> Result<(), TakeError> {
        // SAFETY: raw system calls with integer arguments and a valid array of `len` gids.
        unsafe {
            let groups: Vec<libc::gid_t> = self.groups.clone();
            if libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) != 0 {
                return Err(TakeError::Groups(std::io::Error::last_os_error()));
            }
            libc::syscall(libc::SYS_setfsgid, self.fsgid);
            if libc::syscall(libc::SYS_setfsgid, u32::MAX) as u32 != self.fsgid {
                return Err(TakeError::FsGid);
            }
            libc::syscall(libc::SYS_setfsuid, self.fsuid);
            if libc::syscall(libc::SYS_setfsuid, u32::MAX) as u32 != self.fsuid {
                return Err(TakeError::FsUid);
            }
        }
        Ok(())
    }
}

/// Why the opening thread could not take the target's credentials.
#[derive(Debug, thiserror::Error)]
enum TakeError {
    #[error("setgroups: {0}")]
    Groups(#[source] std::io::Error),
    #[error("setfsgid refused")]
    FsGid,
    #[error("setfsuid refused")]
    FsUid,
}

/// A request to the opening thread: (path, whether it is relative to the working folder).
type OpenRequest = (String, bool, mpsc::SyncSender<Result<File, OpenError>>);

/// Opens the target's files, as the target: paths resolved inside its root (or working folder,
/// for relative ones), with its credentials. Cheap to clone (shared).
#[derive(Clone)]
pub struct TargetFiles {
    inner: Arc<Inner>,
}

struct Inner {
    root: Option<Arc<OwnedFd>>,
    cwd: Option<Arc<OwnedFd>>,
    /// None: open on the calling thread with crashcatch's own rights (they are the target's).
    worker: Option<std::sync::Mutex<Worker>>,
    /// Set when the target's rights cannot be taken: every open is refused with this.
    refused: Option<String>,
}

enum Worker {
    NotStarted(Credentials),
    Running(mpsc::Sender<OpenRequest>),
    Dead(String),
}

impl TargetFiles {
    /// The files of live process `pid`, opened with its credentials.
    pub fn live(pid: i32) -> TargetFiles {
        let root = super::files::open_dir(&super::live::root(pid)).ok().map(Arc::new);
        let cwd = super::files::open_dir(&super::live::cwd(pid)).ok().map(Arc::new);
        let (worker, refused) = match (Credentials::of(pid), Credentials::mine()) {
            (Some(theirs), Some(mine)) if theirs == mine => (None, None),
            (Some(theirs), _) => (Some(std::sync::Mutex::new(Worker::NotStarted(theirs))), None),
            (None, _) => (None, Some(format!("the credentials of pid {pid} cannot be read"))),
        };
        TargetFiles { inner: Arc::new(Inner { root, cwd, worker, refused }) }
    }

    /// Files under the folder `root` (tests, offline reports), with crashcatch's own rights.
    pub fn under(root: &std::path::Path, cwd: Option<&std::path::Path>) -> TargetFiles {
        let open = |p: &std::path::Path| super::files::open_dir(p).ok().map(Arc::new);
        TargetFiles {
            inner: Arc::new(Inner { root: open(root), cwd: cwd.and_then(open), worker: None, refused: None }),
        }
    }

    /// The files of a process recorded in a core: under `root` (the sysroot, or this machine's
    /// root), relative paths from `cwd`, with the rights of `uid`/`gid` from its NT_PRPSINFO
    /// when crashcatch runs as root (it would otherwise show root's files); with crashcatch's
    /// own rights when it does not (they are no more than the user's own).
    pub(crate) fn for_core(
        root: &std::path::Path,
        cwd: Option<&std::path::Path>,
        ids: Option<(u32, u32)>,
    ) -> TargetFiles {
        let mut t = Self::under(root, cwd);
        let root_user = rustix::process::geteuid().is_root();
        if let (true, Some((fsuid, fsgid))) = (root_user, ids) {
            let creds = Credentials { fsuid, fsgid, groups: Vec::new() };
            if Credentials::mine().as_ref() != Some(&creds) {
                Arc::get_mut(&mut t.inner).expect("just made").worker =
                    Some(std::sync::Mutex::new(Worker::NotStarted(creds)));
            }
        }
        t
    }

    /// `under` with another process's credentials taken for the opens (tests of the rights).
    #[cfg(test)]
    pub(crate) fn under_as(root: &std::path::Path, creds: Credentials) -> TargetFiles {
        let mut t = Self::under(root, None);
        Arc::get_mut(&mut t.inner).expect("just made").worker = Some(std::sync::Mutex::new(Worker::NotStarted(creds)));
        t
    }

    /// Opens the target's file `path` (absolute: from its root; relative: from its working
    /// folder) if the target itself could, and only a regular file.
    pub fn open(&self, path: &str) -> Result<File, OpenError> {
        if let Some(why) = &self.inner.refused {
            return Err(OpenError::Rights(why.clone()));
        }
        let relative = !path.starts_with('/');
        let Some(worker) = &self.inner.worker else {
            return open_from(&self.inner, path, relative);
        };
        let mut w = worker.lock().unwrap_or_else(|p| p.into_inner());
        if let Worker::NotStarted(creds) = &*w {
            *w = start(creds.clone(), self.inner.clone());
        }
        let tx = match &*w {
            Worker::Running(tx) => tx.clone(),
            Worker::Dead(why) => return Err(OpenError::Rights(why.clone())),
            Worker::NotStarted(_) => unreachable!("started above"),
        };
        let (reply_tx, reply_rx) = mpsc::sync_channel(1);
        if tx.send((path.to_string(), relative, reply_tx)).is_err() {
            *w = Worker::Dead("the opening thread is gone".into());
            return Err(OpenError::Rights("the opening thread is gone".into()));
        }
        match reply_rx.recv_timeout(OPEN_TIMEOUT) {
            Ok(r) => r,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                *w = Worker::Dead("an earlier open hung".into());
                Err(OpenError::Timeout)
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let why = "the target's rights could not be taken".to_string();
                *w = Worker::Dead(why.clone());
                Err(OpenError::Rights(why))
            }
        }
    }
}

fn open_from(inner: &Inner, path: &str, relative: bool) -> Result<File, OpenError> {
    let dir = if relative { &inner.cwd } else { &inner.root };
    let dir = dir.as_ref().ok_or_else(|| OpenError::System("the process's folder cannot be opened".into()))?;
    // A watched open (process/blocking.rs): a hung mount is abandoned, never waited on.
    super::blocking::file(std::path::Path::new(path), || open_in_root(dir, path, Resolver::Openat2))
        .unwrap_or(Err(OpenError::Timeout))
}

/// Starts the opening thread: it takes `creds`, then serves requests until every sender is
/// gone. Signals stay blocked in it, so the supervisor's handlers keep running on the main
/// thread (where they interrupt waitpid).
fn start(creds: Credentials, inner: Arc<Inner>) -> Worker {
    let (tx, rx) = mpsc::channel::<OpenRequest>();
    let spawned = super::quiet_thread::spawn("cc-files", move || {
        if creds.take().is_err() {
            // Dropping `rx` tells every caller (Disconnected): nothing is opened as root.
            return;
        }
        // The thread keeps its own reference to the folders, not to `inner`'s worker (no cycle).
        let dirs = Inner { root: inner.root.clone(), cwd: inner.cwd.clone(), worker: None, refused: None };
        drop(inner);
        while let Ok((path, relative, reply)) = rx.recv() {
            let _ = reply.send(open_from(&dirs, &path, relative));
        }
    });
    match spawned {
        Ok(_) => Worker::Running(tx),
        Err(e) => Worker::Dead(format!("cannot start the opening thread: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_fourth_ids_and_the_groups() {
        let text = "Name:\tx\nUid:\t1000\t1001\t1002\t65534\nGid:\t100\t101\t102\t65533\nGroups:\t27 4 \n";
        let c = Credentials::from_status(text).unwrap();
        assert_eq!(c, Credentials { fsuid: 65534, fsgid: 65533, groups: vec![4, 27] });
        assert!(Credentials::from_status("Uid:\t1\n").is_none());
        assert_eq!(
            Credentials::from_status("Uid:\t1 1 1 1\nGid:\t2 2 2 2\nGroups:\n").unwrap().groups,
            Vec::<u32>::new()
        );
    }

    #[test]
    fn opens_with_the_targets_rights_only_on_its_own_thread() {
        if !rustix::process::geteuid().is_root() {
            eprintln!("skipped: needs root to take another user's rights");
            return;
        }
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "root only").unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(dir.path().join("public"), "anyone").unwrap();
        std::fs::set_permissions(dir.path().join("public"), std::fs::Permissions::from_mode(0o644)).unwrap();
        let nobody = Credentials { fsuid: 65534, fsgid: 65534, groups: vec![] };
        let files = TargetFiles::under_as(dir.path(), nobody);
        assert!(matches!(files.open("/secret"), Err(OpenError::System(e)) if e.contains("ermission")));
        assert!(files.open("/public").is_ok());
        // The main thread (and so crashcatch) kept its own rights.
        assert!(std::fs::read(&secret).is_ok());
        assert_eq!(Credentials::mine().map(|c| c.fsuid), Some(0));
    }
}
