//! `crashcatch attach PID`: seize a running process and all its threads, wait for a crash,
//! detach cleanly on SIGINT, SIGTERM or SIGHUP. Never PTRACE_O_EXITKILL: if crashcatch dies,
//! the process lives on.

use std::collections::HashSet;

use nix::errno::Errno;
use nix::sys::ptrace::Options;

use super::tracer::{Exit, Tracer};
use super::wait::{self, Status};
use super::{forward, permission_hint, ptrace};
use crate::capture;
use crate::process::{live, signals::signal_name};
use crate::report::model::CrashKind;
use crate::report::output::{console, Emitter, OutputConfig};

#[derive(Debug, Clone)]
pub struct AttachConfig {
    pub pid: i32,
    pub follow_forks: bool,
    pub output: OutputConfig,
    pub capture: capture::Options,
}

/// Why attaching failed, each with the fix.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error("no such process: {pid}")]
    NoSuchProcess { pid: i32 },
    #[error("pid {pid} is already traced by pid {tracer} ({name}); detach that debugger first")]
    AlreadyTraced { pid: i32, tracer: i32, name: String },
    #[error("permission denied to trace pid {pid}{}; {hint}", owner_hint(*.owner, *.me))]
    PermissionDenied { pid: i32, owner: Option<u32>, me: u32, hint: String },
    #[error("cannot attach to pid {pid}: {errno}")]
    Other { pid: i32, errno: Errno },
    #[error("pid {pid} creates threads faster than they can be seized")]
    ThreadStorm { pid: i32 },
}

fn owner_hint(owner: Option<u32>, me: u32) -> String {
    match owner {
        Some(o) if o != me => format!(" (it belongs to uid {o}, you are uid {me}: run as that user or as root)"),
        _ => String::new(),
    }
}

/// Why attaching failed, from the errno of the refused request.
pub fn refusal(pid: i32, e: Errno) -> AttachError {
    match e {
        Errno::ESRCH => AttachError::NoSuchProcess { pid },
        Errno::EPERM | Errno::EACCES => {
            if let Some(t) = tracer_of(pid) {
                return t;
            }
            let me = rustix::process::geteuid().as_raw();
            AttachError::PermissionDenied { pid, owner: live::owner(pid), me, hint: permission_hint() }
        }
        errno => AttachError::Other { pid, errno },
    }
}

/// "already traced by PID (name)", when /proc/PID/status names a tracer.
fn tracer_of(pid: i32) -> Option<AttachError> {
    let tracer = live::tracer(pid)?;
    Some(AttachError::AlreadyTraced { pid, tracer, name: live::comm(tracer).unwrap_or_else(|| "?".into()) })
}

/// Seizes every thread of `pid`, looking again until no new thread appears.
pub fn seize_all(pid: i32, options: Options) -> Result<Vec<i32>, AttachError> {
    if !live::exists(pid) {
        return Err(refusal(pid, Errno::ESRCH));
    }
    if let Some(t) = tracer_of(pid) {
        return Err(t);
    }
    let mut seized: HashSet<i32> = HashSet::new();
    for _ in 0..1000 {
        let tids = live::thread_ids(pid);
        if tids.is_empty() && seized.is_empty() {
            return Err(refusal(pid, Errno::ESRCH));
        }
        let new: Vec<i32> = tids.into_iter().filter(|t| !seized.contains(t)).collect();
        if new.is_empty() {
            let mut v: Vec<i32> = seized.into_iter().collect();
            v.sort_unstable();
            return Ok(v);
        }
        for t in new {
            match ptrace::seize(t, options) {
                Ok(()) => {
                    seized.insert(t);
                }
                // A thread that exited between the listing and the seize.
                Err(Errno::ESRCH) if t != pid => {}
                Err(e) => {
                    for &s in &seized {
                        release_one(s);
                    }
                    return Err(refusal(pid, e));
                }
            }
        }
    }
    Err(AttachError::ThreadStorm { pid })
}

/// Detaches one seized, running thread (interrupt, wait for the stop, detach).
fn release_one(tid: i32) {
    if ptrace::interrupt(tid).is_ok() {
        let sig = match wait::tid(tid) {
            Some(Status::Signal(s)) => s,
            _ => 0,
        };
        let _ = ptrace::detach(tid, sig);
    }
}

pub fn options(follow_forks: bool) -> Options {
    let mut o = Options::PTRACE_O_TRACECLONE | Options::PTRACE_O_TRACEEXEC;
    if follow_forks {
        o |= Options::PTRACE_O_TRACEFORK | Options::PTRACE_O_TRACEVFORK;
    }
    o
}

/// crashcatch's exit status when it could not attach (or stop the process for `dump`): its own
/// failure, as in run mode.
pub const REFUSED: i32 = 125;

/// Runs attach mode; returns crashcatch's exit status, which says how the process ended: 128+N
/// when it was killed by signal N (a crash caught: 139 for SIGSEGV), its exit code when it
/// exited, 0 when crashcatch detached and left it running, [`REFUSED`] when it could not attach.
pub fn attach(cfg: AttachConfig) -> i32 {
    forward::install_detach_handlers();
    super::set_non_dumpable();
    let tids = match seize_all(cfg.pid, options(cfg.follow_forks)) {
        Ok(t) => t,
        Err(e) => {
            console::say(&e.to_string());
            return REFUSED;
        }
    };
    let mut emitter = Emitter::new(cfg.output.clone());
    if !cfg.output.quiet {
        console::say(&format!(
            "attached to pid {} ({} thread{}); waiting for a crash, Ctrl-C to detach",
            cfg.pid,
            tids.len(),
            if tids.len() == 1 { "" } else { "s" }
        ));
    }
    let mut tracer = Tracer::attached(cfg.pid, &tids, &mut emitter, cfg.capture.clone());
    let exit = tracer.run();
    drop(tracer);
    emitter.finish();
    let crashed = !emitter.emitted().is_empty();
    match exit {
        Exit::Detached => {
            emitter.note(&format!("detached from pid {}; it is still running", cfg.pid));
            0
        }
        Exit::Code(c) => {
            emitter.note(&format!("pid {} exited with status {c}", cfg.pid));
            c
        }
        Exit::Signal(s) => {
            if crashed || !cfg.output.quiet {
                console::say(&format!("pid {} was killed by {}", cfg.pid, signal_name(s)))
            }
            128 + s
        }
    }
}

/// Why one process could not be dumped.
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    #[error(transparent)]
    Attach(#[from] AttachError),
    #[error("pid {pid} could not be stopped")]
    NotStopped { pid: i32 },
}

/// Dumps process `pid` into `emitter`: seizes every thread, stops them once for as long as the
/// read phase takes, releases them, and emits the report (kind `dump`).
pub fn dump_one(pid: i32, emitter: &mut Emitter, capture: &capture::Options) -> Result<(), DumpError> {
    let tids = seize_all(pid, Options::empty())?;
    let before = emitter.emitted().len();
    let mut tracer = Tracer::attached(pid, &tids, emitter, capture.clone());
    tracer.snapshot_all(CrashKind::Dump);
    tracer.release_all();
    drop(tracer);
    if emitter.emitted().len() == before {
        return Err(DumpError::NotStopped { pid });
    }
    Ok(())
}

/// `crashcatch dump PID`: every thread's merged stack now, then detach. The process is stopped
/// only while its registers and memory are read; the report's timings say for how long.
pub fn dump(cfg: AttachConfig) -> i32 {
    // Ctrl-C or SIGTERM while the stacks are read: stop waiting, detach, leave it running.
    forward::install_detach_handlers();
    super::set_non_dumpable();
    let mut emitter = Emitter::new(cfg.output.clone());
    match dump_one(cfg.pid, &mut emitter, &cfg.capture) {
        Ok(()) => 0,
        Err(e) => {
            console::say(&e.to_string());
            REFUSED
        }
    }
}
