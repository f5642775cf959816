//! `--test-timeout`: watches, in every traced process, which pytest test is running (the live
//! `PYTEST_CURRENT_TEST`, read from libc's `environ` with `process_vm_readv`, never stopping the
//! process) and says which processes have run one test for longer than the limit.
//!
//! A ticker thread wakes the event loop once a second (a signal to the main thread, so its
//! blocking `waitpid` returns EINTR). The event loop never reads a process itself: each tick
//! hands the list of processes to a poller thread and takes the readings the previous one
//! sent (a reading counts from the moment it was taken, not from when it is taken in). A process whose memory does not answer (a
//! userfaultfd page, a hung FUSE file: process/blocking.rs) keeps the poller blocked: past
//! [`STUCK_AFTER`] that poller is abandoned, the process is no longer timed (one line says so),
//! and the next tick starts a new poller for the others. The address of `environ` is looked up
//! once per process image (again after an exec), by the poller.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::capture::environment;
use crate::capture::worker::STUCK_AFTER;
use crate::modules::ModuleSet;
use crate::process::blocking::{self, Fence, Scope};
use crate::process::live;
use crate::report::model::{TestTimeout, TimeoutAction};

/// The variable pytest keeps up to date: `path::test (phase)`.
const VARIABLE: &str = "PYTEST_CURRENT_TEST";
/// How often every process is looked at.
pub const PERIOD: Duration = Duration::from_secs(1);
/// A process whose libc is not mapped yet (just exec'd) is looked up again after this long.
const RESOLVE_RETRY: Duration = Duration::from_secs(2);
/// Most processes watched at once (a fork bomb must not make every tick slow).
const MAX_PROCESSES: usize = 4096;
/// Pollers abandoned at most: past it, no test is timed any more (each one may be a thread
/// blocked until its process dies).
const MAX_ABANDONED: usize = 16;

/// `--test-timeout SECONDS` and `--test-timeout-action`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TestTimeoutConfig {
    pub limit: Duration,
    pub action: TimeoutAction,
}

/// Where a process's `environ` is.
#[derive(Debug, Clone)]
enum Environ {
    /// libc's `environ`, and the value the process inherited at exec (a subprocess a test
    /// started carries its test's name without running it: that value is not its own test).
    At(u64, Option<String>),
    /// libc is not mapped (yet): look again after this instant.
    Retry(Instant),
    /// No libc `environ` in this image (a static program): never looked at again.
    Never,
}

#[derive(Debug)]
struct Proc {
    /// Bumped when the process exec'd: readings of its former image are dropped.
    generation: u64,
    environ: Environ,
    /// Index of the variable in `environ` last time.
    hint: Option<usize>,
    /// The test running, without its phase, and since when it has been seen.
    test: Option<(String, Instant)>,
    /// The variable's value last read, phase included (what a report names).
    full: String,
    /// The current test was already reported.
    reported: bool,
}

/// What the poller asks about one process.
struct PollRequest {
    pid: i32,
    generation: u64,
    environ: Environ,
    hint: Option<usize>,
}

/// What the poller found in one process.
struct PollReading {
    pid: i32,
    generation: u64,
    /// Where `environ` turned out to be (when it was looked up).
    environ: Environ,
    value: Option<String>,
    index: Option<usize>,
    at: Instant,
}

/// The poller thread of one tick.
struct Poller {
    scope: Arc<Scope>,
    /// The process it is reading now (0: none).
    current: Arc<AtomicI32>,
    readings: Receiver<PollReading>,
    done: Arc<AtomicBool>,
}

/// A process that has run one test for longer than the limit.
#[derive(Debug, Clone)]
pub struct Expired {
    pub pid: i32,
    pub timeout: TestTimeout,
}

/// What `--test-timeout` knows about every traced process.
pub struct Watch {
    pub config: TestTimeoutConfig,
    procs: HashMap<i32, Proc>,
    next_generation: u64,
    poller: Option<Poller>,
    /// Processes whose memory did not answer: no longer timed.
    unreadable: HashSet<i32>,
    abandoned: usize,
    notes: Vec<String>,
}

impl Watch {
    pub fn new(config: TestTimeoutConfig) -> Self {
        Watch {
            config,
            procs: HashMap::new(),
            next_generation: 0,
            poller: None,
            unreadable: HashSet::new(),
            abandoned: 0,
            notes: Vec::new(),
        }
    }

    /// The process `pid` exec'd or exited: its image (and test) are gone.
    pub fn forget(&mut self, pid: i32) {
        self.procs.remove(&pid);
        self.unreadable.remove(&pid);
    }

    /// Lines for the user (a process no longer timed, and why).
    pub fn take_notes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notes)
    }

    /// One tick over the processes `pids` (thread-group ids): takes what the last poller read,
    /// starts the next one, and returns the processes that have run the same test for longer
    /// than the limit and were not reported yet. Never reads a process itself, never waits.
    pub fn tick(&mut self, pids: &[i32]) -> Vec<Expired> {
        let now = Instant::now();
        self.procs.retain(|p, _| pids.contains(p));
        self.take_readings();
        self.check_poller();
        if self.poller.is_none() && self.abandoned < MAX_ABANDONED {
            self.start_poller(pids, now);
        }
        self.expired(now)
    }

    fn take_readings(&mut self) {
        let Some(p) = &self.poller else { return };
        let readings: Vec<PollReading> = p.readings.try_iter().collect();
        if p.done.load(Ordering::Acquire) && p.current.load(Ordering::Acquire) == 0 {
            // Every reading was sent before `done`; take the last ones.
            let rest: Vec<PollReading> = p.readings.try_iter().collect();
            self.poller = None;
            readings.into_iter().chain(rest).for_each(|r| self.apply(r));
            return;
        }
        readings.into_iter().for_each(|r| self.apply(r));
    }

    fn apply(&mut self, r: PollReading) {
        let Some(p) = self.procs.get_mut(&r.pid).filter(|p| p.generation == r.generation) else { return };
        p.environ = r.environ;
        p.hint = r.index.or(p.hint);
        let inherited = match &p.environ {
            Environ::At(_, inherited) => inherited.clone(),
            _ => None,
        };
        let Some(full) = r.value.filter(|v| Some(v) != inherited.as_ref()) else {
            p.test = None;
            p.reported = false;
            return;
        };
        let node = strip_phase(&full).to_string();
        match &p.test {
            Some((t, _)) if *t == node => {}
            _ => {
                p.test = Some((node, r.at));
                p.reported = false;
            }
        }
        p.full = full;
    }

    /// A poller blocked in one process's memory for too long is abandoned, and that process is
    /// no longer timed.
    fn check_poller(&mut self) {
        let Some(p) = &self.poller else { return };
        if p.scope.stuck(STUCK_AFTER).is_none() {
            return;
        }
        let pid = p.current.load(Ordering::Acquire);
        p.scope.abandon();
        self.poller = None;
        self.abandoned += 1;
        self.unreadable.insert(pid);
        self.notes.push(format!(
            "--test-timeout: the memory of pid {pid} did not answer within {:.1} s (a userfaultfd page or a hung \
             FUSE file?); its tests are no longer timed",
            STUCK_AFTER.as_secs_f64()
        ));
        if self.abandoned >= MAX_ABANDONED {
            self.notes.push("--test-timeout: too many processes did not answer; tests are no longer timed".into());
        }
    }

    fn start_poller(&mut self, pids: &[i32], now: Instant) {
        let mut requests = Vec::new();
        for &pid in pids.iter().filter(|p| !self.unreadable.contains(p)).take(MAX_PROCESSES) {
            let generation = &mut self.next_generation;
            let p = self.procs.entry(pid).or_insert_with(|| {
                *generation += 1;
                Proc {
                    generation: *generation,
                    environ: Environ::Retry(now),
                    hint: None,
                    test: None,
                    full: String::new(),
                    reported: false,
                }
            });
            if matches!(p.environ, Environ::Never) {
                continue;
            }
            requests.push(PollRequest { pid, generation: p.generation, environ: p.environ.clone(), hint: p.hint });
        }
        if requests.is_empty() {
            return;
        }
        let scope = Scope::new(Arc::new(RwLock::new(Fence::default())));
        let current = Arc::new(AtomicI32::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let (s, c, d) = (scope.clone(), current.clone(), done.clone());
        let spawned = crate::process::quiet_thread::spawn("cc-poll", move || poll(requests, s, &c, &d, &tx));
        if spawned.is_ok() {
            self.poller = Some(Poller { scope, current, readings: rx, done });
        }
    }

    fn expired(&mut self, now: Instant) -> Vec<Expired> {
        let mut out = Vec::new();
        let limit = self.config.limit;
        for (&pid, p) in self.procs.iter_mut() {
            let Some((_, since)) = &p.test else { continue };
            let elapsed = now.duration_since(*since);
            if p.reported || elapsed < limit {
                continue;
            }
            p.reported = true;
            let test = p.full.clone();
            out.push(Expired {
                pid,
                timeout: TestTimeout {
                    test,
                    limit_s: limit.as_secs_f64(),
                    elapsed_s: (elapsed.as_secs_f64() * 10.0).round() / 10.0,
                    action: self.config.action,
                },
            });
        }
        out.sort_by_key(|e| e.pid);
        out
    }
}

/// The poller: reads every requested process's running test, sending each reading as it goes.
fn poll(
    requests: Vec<PollRequest>,
    scope: Arc<Scope>,
    current: &AtomicI32,
    done: &AtomicBool,
    tx: &Sender<PollReading>,
) {
    blocking::enter(scope);
    for r in requests {
        current.store(r.pid, Ordering::Release);
        let now = Instant::now();
        let environ = match r.environ {
            Environ::Retry(at) if now >= at => resolve(r.pid, now),
            e => e,
        };
        let (value, index) = match &environ {
            Environ::At(sym, _) => {
                let memory = live::LiveMemory::new(r.pid);
                let v = environment::read_variable(&memory, *sym, VARIABLE, r.hint);
                (v.value, v.index)
            }
            _ => (None, None),
        };
        let reading = PollReading { pid: r.pid, generation: r.generation, environ, value, index, at: now };
        if tx.send(reading).is_err() {
            break;
        }
    }
    current.store(0, Ordering::Release);
    done.store(true, Ordering::Release);
}

/// `t.py::test_x (call)` → `t.py::test_x`: setup, call and teardown are one test's time.
fn strip_phase(v: &str) -> &str {
    match v.rsplit_once(" (") {
        Some((node, phase)) if phase.ends_with(')') => node,
        _ => v,
    }
}

/// Finds libc's `environ` in the process's current image.
fn resolve(pid: i32, now: Instant) -> Environ {
    let maps = live::maps(pid);
    let libc = maps.iter().any(|m| {
        m.path
            .as_deref()
            .and_then(|p| p.rsplit('/').next())
            .is_some_and(|n| n.starts_with("libc.so") || n.starts_with("libc-"))
    });
    if !libc {
        // Right after exec only the loader is mapped; a static program never maps libc.
        let has_loader = maps.iter().any(|m| m.path.as_deref().is_some_and(|p| p.contains("/ld-")));
        return if has_loader || maps.is_empty() { Environ::Retry(now + RESOLVE_RETRY) } else { Environ::Never };
    }
    let root = live::root(pid);
    let memory = live::LiveMemory::new(pid);
    let modules = ModuleSet::build(
        &maps,
        |p| Some(crate::process::view::under_root(Some(&root), p)),
        &memory,
        |m| Some(live::map_file(pid, m)),
    );
    let inherited = live::environ(pid)
        .into_iter()
        .find_map(|kv| kv.strip_prefix(VARIABLE).and_then(|r| r.strip_prefix('=')).map(str::to_string));
    match environment::environ_address(&modules, live::exe(pid).as_deref()) {
        Some(a) => Environ::At(a, inherited),
        None => Environ::Never,
    }
}

// ---------------------------------------------------------------------------------------------
// The ticker: wakes the event loop once per PERIOD.

static TICK: AtomicBool = AtomicBool::new(false);
static TICKER_STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_tick(_sig: libc::c_int) {
    TICK.store(true, Ordering::Relaxed);
}

/// The signal the ticker sends to the main thread: the first real-time signal libc leaves free.
fn tick_signal() -> libc::c_int {
    libc::SIGRTMIN()
}

/// Starts the thread that interrupts the calling (event loop) thread's `waitpid` every
/// [`PERIOD`]. The handler only stores to an atomic; it is installed without SA_RESTART.
pub fn start_ticker() {
    let sig = tick_signal();
    // SAFETY: installing a handler that only stores to an atomic.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_tick as *const () as usize;
        sa.sa_flags = 0;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(sig, &sa, std::ptr::null_mut());
    }
    // gettid through rustix (a system call): glibc 2.17 has no gettid().
    let (pid, tid) =
        (rustix::process::getpid().as_raw_nonzero().get(), rustix::thread::gettid().as_raw_nonzero().get());
    TICKER_STOP.store(false, Ordering::Relaxed);
    let spawned = crate::process::quiet_thread::spawn("crashcatch-tick", move || {
        while !TICKER_STOP.load(Ordering::Relaxed) {
            std::thread::sleep(PERIOD);
            TICK.store(true, Ordering::Relaxed);
            // SAFETY: a signal to our own main thread, whose handler only stores to an atomic.
            unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, sig) };
        }
    });
    if let Err(e) = spawned {
        crate::report::output::console::say(&format!(
            "--test-timeout: cannot start the timer thread ({e}); tests are not timed"
        ));
    }
}

/// Stops the ticker (it ends within one period).
pub fn stop_ticker() {
    TICKER_STOP.store(true, Ordering::Relaxed);
}

/// A tick is due (the event loop should stop waiting).
pub fn tick_pending() -> bool {
    TICK.load(Ordering::Relaxed)
}

/// True once per tick.
pub fn take_tick() -> bool {
    TICK.swap(false, Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_are_one_test() {
        assert_eq!(strip_phase("t.py::test_a (setup)"), "t.py::test_a");
        assert_eq!(strip_phase("t.py::test_a[x (1)] (call)"), "t.py::test_a[x (1)]");
        assert_eq!(strip_phase("t.py::test_a"), "t.py::test_a");
    }
}
