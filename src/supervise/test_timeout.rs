//! `--test-timeout`: watches, in every traced process, which pytest test is running (the live
//! `PYTEST_CURRENT_TEST`, read from libc's `environ` with `process_vm_readv`, never stopping the
//! process) and says which processes have run one test for longer than the limit.
//!
//! A ticker thread wakes the event loop once a second (a signal to the main thread, so its
//! blocking `waitpid` returns EINTR); each tick reads the variable once per traced process. The
//! address of `environ` is looked up once per process image (again after an exec).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::capture::environment;
use crate::modules::ModuleSet;
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

/// `--test-timeout SECONDS` and `--test-timeout-action`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Config {
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
    environ: Environ,
    /// Index of the variable in `environ` last time.
    hint: Option<usize>,
    /// The test running, without its phase, and since when it has been seen.
    test: Option<(String, Instant)>,
    /// The current test was already reported.
    reported: bool,
}

/// A process that has run one test for longer than the limit.
#[derive(Debug, Clone)]
pub struct Expired {
    pub pid: i32,
    pub timeout: TestTimeout,
}

/// What `--test-timeout` knows about every traced process.
pub struct Watch {
    pub config: Config,
    procs: HashMap<i32, Proc>,
}

impl Watch {
    pub fn new(config: Config) -> Self {
        Watch { config, procs: HashMap::new() }
    }

    /// The process `pid` exec'd or exited: its image (and test) are gone.
    pub fn forget(&mut self, pid: i32) {
        self.procs.remove(&pid);
    }

    /// Reads the running test of every process in `pids` (thread-group ids) and returns those
    /// that have run the same test for longer than the limit and were not reported yet.
    pub fn poll(&mut self, pids: &[i32]) -> Vec<Expired> {
        let now = Instant::now();
        self.procs.retain(|p, _| pids.contains(p));
        let mut out = Vec::new();
        for &pid in pids.iter().take(MAX_PROCESSES) {
            let p = self.procs.entry(pid).or_insert(Proc {
                environ: Environ::Retry(now),
                hint: None,
                test: None,
                reported: false,
            });
            if let Environ::Retry(at) = p.environ {
                if now >= at {
                    p.environ = resolve(pid, now);
                }
            }
            let Environ::At(sym, inherited) = &p.environ else { continue };
            let memory = live::LiveMemory::new(pid);
            let v = environment::read_variable(&memory, *sym, VARIABLE, p.hint);
            p.hint = v.index.or(p.hint);
            let Some(full) = v.value.filter(|v| Some(v) != inherited.as_ref()) else {
                p.test = None;
                p.reported = false;
                continue;
            };
            let node = strip_phase(&full).to_string();
            match &p.test {
                Some((t, _)) if *t == node => {}
                _ => {
                    p.test = Some((node, now));
                    p.reported = false;
                }
            }
            let Some((_, since)) = &p.test else { continue };
            let elapsed = now.duration_since(*since);
            if !p.reported && elapsed >= self.config.limit {
                p.reported = true;
                out.push(Expired {
                    pid,
                    timeout: TestTimeout {
                        test: full,
                        limit_s: self.config.limit.as_secs_f64(),
                        elapsed_s: (elapsed.as_secs_f64() * 10.0).round() / 10.0,
                        action: self.config.action,
                    },
                });
            }
        }
        out
    }
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
        |p| {
            let host = root.join(p.trim_start_matches('/'));
            Some(if host.exists() { host } else { p.into() })
        },
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
    // SAFETY: getpid has no arguments.
    let (pid, tid) = (unsafe { libc::getpid() }, rustix::thread::gettid().as_raw_nonzero().get());
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
        eprintln!("crashcatch: --test-timeout: cannot start the timer thread ({e}); tests are not timed");
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
