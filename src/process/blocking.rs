//! Reads that may never return: what a worker thread is blocked in, and what it must not touch.
//!
//! A read of a target's memory can sleep in the kernel until SIGKILL (a userfaultfd page nobody
//! serves, a page of a hung FUSE or NFS file), and so can the open or read of a file the target
//! or a core names. No signal handler runs in such a sleep, so the supervisor never makes these
//! reads itself: a worker thread does (capture/worker.rs, the `--test-timeout` poller), inside
//! a [`Scope`]. Every such read goes through [`memory`] or [`file`], which first look at the
//! scope's [`Fence`] (what earlier attempts found stuck: never touched again), then record what
//! the thread is blocked in and since when. The watchdog on the supervisor's side sees a read
//! stuck past its limit ([`Scope::stuck`]), fences what it was reading, abandons the thread and
//! starts another. An abandoned thread is woken when the target dies (its userfaultfd closes)
//! or killed when crashcatch exits; it never holds a lock while it sleeps.
//!
//! Outside a scope (tests, tools, core files read by the user's own command) both functions
//! just run the read.

use std::cell::RefCell;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// What a thread is blocked in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blocked {
    /// A read of process `pid`'s memory at this address.
    Memory { pid: i32, addr: u64 },
    /// An open, stat or read of this file (a path the target, a core or /proc names).
    File { path: PathBuf },
}

impl std::fmt::Display for Blocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Blocked::Memory { pid, addr } => write!(f, "a read of pid {pid}'s memory at {addr:#x}"),
            Blocked::File { path } => write!(f, "a read of the file {}", path.display()),
        }
    }
}

/// What no read may touch any more: ranges of memory and files found stuck, or everything.
#[derive(Debug, Default)]
pub struct Fence {
    /// Address ranges `[start, end)` never read.
    ranges: Vec<(u64, u64)>,
    /// Files never opened or read.
    paths: HashSet<PathBuf>,
    /// No memory is read at all (the process runs again, or too many reads got stuck).
    memory_closed: bool,
    /// No file is opened or read at all.
    files_closed: bool,
}

/// At most this many ranges and files are fenced one by one; past it, all of them are.
const MAX_FENCED: usize = 4096;

impl Fence {
    /// Never read `[start, end)` again.
    pub fn memory_range(&mut self, start: u64, end: u64) {
        if self.ranges.len() >= MAX_FENCED {
            self.memory_closed = true;
        } else if start < end {
            self.ranges.push((start, end));
        }
    }

    /// Never open or read `path` again.
    pub fn file(&mut self, path: &Path) {
        if self.paths.len() >= MAX_FENCED {
            self.files_closed = true;
        } else {
            self.paths.insert(path.to_path_buf());
        }
    }

    /// No memory at all from now on.
    pub fn close_memory(&mut self) {
        self.memory_closed = true;
    }

    /// No file at all from now on.
    pub fn close_files(&mut self) {
        self.files_closed = true;
    }

    /// How many of `len` bytes from `addr` may be read: up to the first fenced byte.
    fn memory_allowed(&self, addr: u64, len: usize) -> usize {
        if self.memory_closed {
            return 0;
        }
        let end = addr.saturating_add(len as u64);
        let mut allowed = end;
        for &(s, e) in &self.ranges {
            if s < end && addr < e {
                allowed = allowed.min(s.max(addr));
            }
        }
        (allowed - addr) as usize
    }

    fn file_allowed(&self, path: &Path) -> bool {
        !self.files_closed && !self.paths.contains(path)
    }
}

/// One worker's watched reads: the fence shared by every attempt of one job, what this thread
/// is blocked in now, and whether it was abandoned.
#[derive(Debug)]
pub struct Scope {
    fence: Arc<RwLock<Fence>>,
    current: Mutex<Option<(Blocked, Instant)>>,
    abandoned: AtomicBool,
}

impl Scope {
    pub fn new(fence: Arc<RwLock<Fence>>) -> Arc<Scope> {
        Arc::new(Scope { fence, current: Mutex::new(None), abandoned: AtomicBool::new(false) })
    }

    /// What the thread has been blocked in for longer than `limit`, if anything.
    pub fn stuck(&self, limit: Duration) -> Option<Blocked> {
        let cur = self.current.lock().unwrap_or_else(|p| p.into_inner());
        cur.as_ref().filter(|(_, since)| since.elapsed() >= limit).map(|(b, _)| b.clone())
    }

    /// The watchdog gave up on this thread: from now on every read it tries fails at once, so
    /// that when its stuck read returns it ends quickly and touches nothing else.
    pub fn abandon(&self) {
        self.abandoned.store(true, Ordering::Release);
    }

    pub fn is_abandoned(&self) -> bool {
        self.abandoned.load(Ordering::Acquire)
    }

    fn fence(&self) -> std::sync::RwLockReadGuard<'_, Fence> {
        self.fence.read().unwrap_or_else(|p| p.into_inner())
    }

    fn enter(&self, what: Blocked) {
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Some((what, Instant::now()));
    }

    fn leave(&self) {
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

thread_local! {
    static SCOPE: RefCell<Option<Arc<Scope>>> = const { RefCell::new(None) };
}

/// Makes `scope` the calling thread's: its reads are watched and fenced from now on.
pub fn enter(scope: Arc<Scope>) {
    SCOPE.with(|s| *s.borrow_mut() = Some(scope));
}

fn current() -> Option<Arc<Scope>> {
    SCOPE.with(|s| s.borrow().clone())
}

/// Reads up to `len` bytes of the target's memory at `addr` with `read(allowed)`, which gets
/// how many bytes it may read (fewer when part of the range is fenced, 0 when all is) and
/// returns how many it read.
pub fn memory(pid: i32, addr: u64, len: usize, read: impl FnOnce(usize) -> usize) -> usize {
    let Some(scope) = current() else { return read(len) };
    if scope.is_abandoned() {
        return 0;
    }
    let allowed = scope.fence().memory_allowed(addr, len);
    if allowed == 0 {
        return 0;
    }
    scope.enter(Blocked::Memory { pid, addr });
    let got = read(allowed);
    scope.leave();
    got
}

/// Runs `op` (an open, stat or read of `path`) unless the file is fenced (None then).
pub fn file<R>(path: &Path, op: impl FnOnce() -> R) -> Option<R> {
    let Some(scope) = current() else { return Some(op()) };
    if scope.is_abandoned() || !scope.fence().file_allowed(path) {
        return None;
    }
    scope.enter(Blocked::File { path: path.to_path_buf() });
    let r = op();
    scope.leave();
    Some(r)
}

/// Whether `path` exists, as a watched stat (false when fenced).
pub fn exists(path: &Path) -> bool {
    file(path, || path.exists()).unwrap_or(false)
}

/// Why [`watched`] stopped waiting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GaveUp {
    /// A read did not return within the limit.
    Stuck(Blocked),
    /// The deadline passed.
    Deadline,
    /// The caller asked to stop waiting (a signal).
    Stopped,
    /// The work panicked, with this message.
    Panicked(String),
    /// No thread could be started.
    NoThread(String),
}

impl std::fmt::Display for GaveUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GaveUp::Stuck(b) => write!(f, "{b} did not return"),
            GaveUp::Deadline => write!(f, "it took too long"),
            GaveUp::Stopped => write!(f, "crashcatch was asked to stop"),
            GaveUp::Panicked(why) => write!(f, "internal error: {why}"),
            GaveUp::NoThread(why) => write!(f, "no thread could be started ({why})"),
        }
    }
}

/// How often a waiting supervisor looks at its limits and signals.
pub const SLICE: Duration = Duration::from_millis(5);

/// Runs `work` on a new thread (every signal blocked) inside a scope over `fence`, and waits
/// for it in slices of [`SLICE`]: gives up (abandoning the thread) when one of its reads is
/// blocked for longer than `stuck`, at `deadline`, or when `stop()` says so. A panic in `work`
/// is returned, never unwinds into the caller.
pub fn watched<T: Send + 'static>(
    name: &str,
    fence: Arc<RwLock<Fence>>,
    work: impl FnOnce() -> T + Send + 'static,
    stuck: Duration,
    deadline: Instant,
    stop: &dyn Fn() -> bool,
) -> Result<T, GaveUp> {
    let scope = Scope::new(fence);
    let (tx, rx) = std::sync::mpsc::channel();
    let inner = scope.clone();
    super::quiet_thread::spawn(name, move || {
        enter(inner);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
        let _ = tx.send(r.map_err(|p| panic_message(p.as_ref())));
    })
    .map_err(|e| GaveUp::NoThread(e.to_string()))?;
    loop {
        match rx.recv_timeout(SLICE) {
            Ok(r) => return r.map_err(GaveUp::Panicked),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                return Err(GaveUp::Panicked("the thread ended without a result".into()))
            }
        }
        let gave_up = if let Some(b) = scope.stuck(stuck) {
            GaveUp::Stuck(b)
        } else if Instant::now() >= deadline {
            GaveUp::Deadline
        } else if stop() {
            GaveUp::Stopped
        } else {
            continue;
        };
        scope.abandon();
        return Err(gave_up);
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fence_cuts_reads_at_its_first_byte() {
        let mut f = Fence::default();
        f.memory_range(0x2000, 0x3000);
        assert_eq!(f.memory_allowed(0x1000, 0x800), 0x800);
        assert_eq!(f.memory_allowed(0x1800, 0x1000), 0x800);
        assert_eq!(f.memory_allowed(0x2800, 8), 0);
        assert_eq!(f.memory_allowed(0x3000, 8), 8);
        f.close_memory();
        assert_eq!(f.memory_allowed(0x1000, 8), 0);
        f.file(Path::new("/x"));
        assert!(!f.file_allowed(Path::new("/x")));
        assert!(f.file_allowed(Path::new("/y")));
    }

    #[test]
    fn a_scope_knows_what_its_thread_is_stuck_in() {
        let fence = Arc::new(RwLock::new(Fence::default()));
        let scope = Scope::new(fence.clone());
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
        let s = scope.clone();
        let t = std::thread::spawn(move || {
            enter(s);
            memory(7, 0x1234, 8, |n| {
                started_tx.send(()).unwrap();
                rx.recv().unwrap();
                n
            })
        });
        started_rx.recv().unwrap();
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(scope.stuck(Duration::from_millis(10)), Some(Blocked::Memory { pid: 7, addr: 0x1234 }));
        assert_eq!(scope.stuck(Duration::from_secs(60)), None);
        tx.send(()).unwrap();
        assert_eq!(t.join().unwrap(), 8);
        assert_eq!(scope.stuck(Duration::ZERO), None);
        // Abandoned: nothing more is read.
        scope.abandon();
        enter(scope.clone());
        assert_eq!(memory(7, 0x1234, 8, |n| n), 0);
        assert_eq!(file(Path::new("/etc/hostname"), || 1), None);
        SCOPE.with(|s| *s.borrow_mut() = None);
        fence.write().unwrap().file(Path::new("/etc/hostname"));
        assert_eq!(file(Path::new("/etc/hostname"), || 1), Some(1));
    }

    #[test]
    fn watched_work_is_given_up_on_when_stuck_and_returned_otherwise() {
        let fence = || Arc::new(RwLock::new(Fence::default()));
        let far = Instant::now() + Duration::from_secs(60);
        assert_eq!(watched("t", fence(), || 5, Duration::from_secs(1), far, &|| false), Ok(5));
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let stuck = watched(
            "t",
            fence(),
            move || file(Path::new("/never"), || rx.recv().ok()),
            Duration::from_millis(20),
            far,
            &|| false,
        );
        assert_eq!(stuck, Err(GaveUp::Stuck(Blocked::File { path: "/never".into() })));
        drop(tx);
        let r: Result<(), _> = watched("t", fence(), || panic!("boom"), Duration::from_secs(1), far, &|| false);
        assert_eq!(r, Err(GaveUp::Panicked("boom".into())));
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let r = watched("t", fence(), move || rx.recv().ok(), Duration::from_secs(60), far, &|| true);
        assert_eq!(r, Err(GaveUp::Stopped));
        drop(tx);
    }
}
