//! `pytest --crashcatch`: the running pytest process watched where it stands, without starting
//! it again. The plugin (python/crashcatch/pytest_plugin.py) starts `crashcatch session ...
//! PID` in a session of its own with two pipes, and the two speak lines:
//!
//! 1. crashcatch forks and its first half exits, so the watcher is no child of pytest (no extra
//!    child for a test to see or reap) and no terminal signal reaches it; it says `pid N`.
//! 2. The plugin allows N as its tracer (`prctl(PR_SET_PTRACER, N)`, for Yama's
//!    `ptrace_scope` 1) and says `go`. Nothing is seized before that, nor after the plugin has
//!    given up (the pipe closed: crashcatch leaves).
//! 3. crashcatch seizes every thread of the session with the fork, vfork, clone, exec and exit
//!    options and says `ok`, or `error: why` (one line) and leaves. Never PTRACE_O_EXITKILL:
//!    if crashcatch dies, the kernel detaches it and the session runs on untraced. A plugin
//!    that hears nothing in time kills crashcatch, with the same effect.
//! 4. Everything the session starts from then on (xdist workers, subprocesses) is followed as
//!    in run mode; it starts none before the plugin's first hook.
//! 5. At the session's end the main thread is held at its PTRACE_EVENT_EXIT: the outputs'
//!    last word (the JUnit merge into pytest's file, the summary line, the job summary) is
//!    written before pytest's parent can see it exit, then everything is let go. crashcatch is
//!    not pytest's parent: it neither reaps it nor passes on its status; its own status is 0.

use std::io::Write;
use std::os::fd::{FromRawFd, OwnedFd};
use std::time::Duration;

use nix::sys::ptrace::Options;

use super::tracer::{Exit, Tracer};
use super::{attach, forward, test_timeout, CoreLimits};
use crate::capture;
use crate::report::output::{Emitter, OutputConfig};

#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub pid: i32,
    /// crashcatch → plugin: `pid N`, then `ok` or `error: why`.
    pub notify_fd: i32,
    /// plugin → crashcatch: `go`.
    pub go_fd: i32,
    pub output: OutputConfig,
    pub capture: capture::Options,
    pub test_timeout: Option<test_timeout::TestTimeoutConfig>,
    pub core_dump: Option<CoreLimits>,
}

/// How long crashcatch waits for the plugin's `go` (the plugin waits less for `ok`).
const GO_WAIT: Duration = Duration::from_secs(30);

/// The options of every seized thread: follow what the session starts, and stop at exits (the
/// main thread's is where the session ends).
fn options() -> Options {
    Options::PTRACE_O_TRACEFORK
        | Options::PTRACE_O_TRACEVFORK
        | Options::PTRACE_O_TRACECLONE
        | Options::PTRACE_O_TRACEEXEC
        | Options::PTRACE_O_TRACEEXIT
}

/// Runs the session mode; returns crashcatch's exit status (0; 125 when it could not watch).
pub fn session(cfg: SessionConfig) -> i32 {
    // SAFETY: the descriptors were passed by the plugin for us alone; each is owned once here.
    let (notify, go) = unsafe { (OwnedFd::from_raw_fd(cfg.notify_fd), OwnedFd::from_raw_fd(cfg.go_fd)) };
    let mut notify = std::fs::File::from(notify);
    // Out of the plugin's process tree: the first half exits once the second half's pid is said.
    // SAFETY: crashcatch has no other thread yet; the child goes on with this one alone.
    match unsafe { libc::fork() } {
        -1 => {
            let _ = writeln!(notify, "error: fork: {}", std::io::Error::last_os_error());
            return attach::REFUSED;
        }
        0 => {}
        child => {
            let _ = writeln!(notify, "pid {child}");
            // SAFETY: leaving at once, without running anything the child shares.
            unsafe { libc::_exit(0) }
        }
    }
    if !wait_for_go(&go) {
        return 0;
    }
    drop(go);
    forward::install_detach_handlers();
    // The report folder is opened (and a bad one said) before the session goes on.
    let mut emitter = Emitter::new(cfg.output.clone());
    let tids = match attach::seize_all(cfg.pid, options()) {
        Ok(t) => t,
        Err(e) => {
            let _ = writeln!(notify, "error: {e}");
            return attach::REFUSED;
        }
    };
    super::set_non_dumpable();
    let mut tracer = Tracer::attached(cfg.pid, &tids, &mut emitter, cfg.capture.clone());
    tracer.hold_main_at_exit = true;
    tracer.core_dump = cfg.core_dump;
    if let Some(t) = cfg.test_timeout {
        tracer.test_watch = Some(test_timeout::Watch::new(t));
        test_timeout::start_ticker();
    }
    let _ = writeln!(notify, "ok");
    drop(notify);
    let exit = tracer.run();
    test_timeout::stop_ticker();
    tracer.finish_and_release();
    drop(tracer);
    if exit == Exit::Detached {
        emitter.note(&format!("detached from pid {}; it is still running", cfg.pid));
    }
    0
}

/// Waits for the plugin's `go`; false when it closed the pipe, said something else, or did not
/// answer within [`GO_WAIT`].
fn wait_for_go(go: &OwnedFd) -> bool {
    use rustix::event::{PollFd, PollFlags, Timespec};
    let wait = Timespec { tv_sec: GO_WAIT.as_secs() as i64, tv_nsec: 0 };
    if rustix::event::poll(&mut [PollFd::new(go, PollFlags::IN)], Some(&wait)) != Ok(1) {
        return false;
    }
    let mut buf = [0u8; 16];
    let n = rustix::io::read(go, &mut buf).unwrap_or(0);
    n > 0 && buf[..n].starts_with(b"go")
}
