//! The supervisor: the only module that calls ptrace, waitpid, kill or fork. It starts (or, in
//! later modes, seizes) the process, runs the event loop, decides per fatal signal whether the
//! process will die, has a report made and written, then lets the signal act.

pub mod attach;
pub mod core_dump;
pub mod forward;
pub mod policy;
pub mod ptrace;
pub mod session;
pub mod spawn;
pub mod stopped;
pub mod subprocesses;
pub mod test_timeout;
pub mod tracer;
pub mod wait;
pub mod wake;

use std::ffi::OsString;

use nix::sys::ptrace::Options;

use crate::capture;
use crate::process::live;
use crate::report::output::{console, Emitter, OutputConfig};

pub use tracer::Exit;

#[derive(Debug, Clone)]
pub struct RunConfig {
    pub command: Vec<OsString>,
    pub output: OutputConfig,
    /// Forward signals to the child's whole process group.
    pub signal_group: bool,
    pub capture: capture::Options,
    /// Dump every stack when the command runs longer than this many seconds.
    pub hang_timeout: Option<u32>,
    pub hang_action: tracer::HangAction,
    /// `--test-timeout`: report (and kill) a process whose pytest test runs longer than this.
    pub test_timeout: Option<test_timeout::TestTimeoutConfig>,
    /// Become a child subreaper (PID 1 always reaps orphans).
    pub subreaper: bool,
    /// `--core`: also write a core file of each crashed process, within these limits.
    pub core_dump: Option<CoreLimits>,
}

/// `--core-max-mb` and `--core-max-total-mb`, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoreLimits {
    pub per_core: u64,
    /// For all the cores of one run together.
    pub total: u64,
}

/// What the kernel's ptrace policy allows, for error messages.
pub fn permission_hint() -> String {
    match live::ptrace_scope() {
        Some(3) => "kernel.yama.ptrace_scope is 3: ptrace is disabled on this machine until reboot".into(),
        Some(2) => "kernel.yama.ptrace_scope is 2: only a process with CAP_SYS_PTRACE (root) may trace".into(),
        Some(1) => "kernel.yama.ptrace_scope is 1: only descendants (or with CAP_SYS_PTRACE) may be traced".into(),
        _ => "is ptrace blocked here (a container's seccomp profile, or a missing CAP_SYS_PTRACE)?".into(),
    }
}

/// Marks crashcatch non-dumpable: no core file, its /proc files owned by root, and no ptrace
/// from unprivileged processes. (Its own ptrace of the target is unaffected.)
pub fn set_non_dumpable() {
    let _ = rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable);
}

/// Ends crashcatch the way the traced command ended: the same exit code, or death by the same
/// signal (without a second core dump from crashcatch itself).
pub fn exit_like(exit: Exit) -> ! {
    // Nothing to flush: every byte crashcatch prints went out through report/output/console.rs,
    // unbuffered.
    match exit {
        Exit::Code(c) => std::process::exit(c),
        Exit::Detached => std::process::exit(0),
        Exit::Signal(sig) => {
            forward::uninstall();
            // SAFETY: resetting our own disposition, mask and core limit, then signalling ourselves.
            unsafe {
                let zero = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
                libc::setrlimit(libc::RLIMIT_CORE, &zero);
                libc::signal(sig, libc::SIG_DFL);
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, sig);
                libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
                libc::kill(libc::getpid(), sig);
            }
            // A signal whose default is to ignore or stop (or PID 1, which the kernel protects).
            std::process::exit(128 + sig)
        }
    }
}

/// `crashcatch -- CMD`: runs the command to its end; returns how it ended, or the exit code of
/// a usage error (127 not found, 126 not executable, 125 our own failure).
pub fn run(cfg: RunConfig) -> Exit {
    let options = Options::PTRACE_O_TRACEFORK
        | Options::PTRACE_O_TRACEVFORK
        | Options::PTRACE_O_TRACECLONE
        | Options::PTRACE_O_TRACEEXEC
        | Options::PTRACE_O_EXITKILL;
    // A signal sent in the first milliseconds must not be lost: the forwarded ones stay
    // blocked (pending) until the target's pid is known and the handlers are in place; the
    // child starts with default dispositions and restores its mask before exec.
    let old_mask = forward::block();
    // As PID 1 (a container's entrypoint) or a subreaper, orphans are re-parented to us; the
    // event loop's waitpid(-1) reaps them, so zombies never pile up.
    if cfg.subreaper && std::process::id() != 1 {
        if let Err(e) = rustix::process::set_child_subreaper(Some(rustix::process::getpid())) {
            console::say(&format!("--subreaper: {}", std::io::Error::from(e)));
        }
    }
    let spawned = match spawn::spawn(&cfg.command, options, cfg.signal_group) {
        Ok(s) => s,
        Err(e) => {
            forward::unblock(&old_mask);
            console::say(&e.to_string());
            return Exit::Code(125);
        }
    };
    forward::set_target(spawned.pid);
    forward::install(cfg.signal_group);
    forward::unblock(&old_mask);
    // Nobody but root reads crashcatch's memory (it holds what it read of the target) or
    // ptraces it; set only now, as the child had to be dumpable to be seized before its exec.
    set_non_dumpable();
    let mut emitter = Emitter::new(cfg.output.clone());
    let mut tracer = tracer::Tracer::new(spawned.pid, &mut emitter, cfg.capture.clone());
    tracer.hang_action = cfg.hang_action;
    tracer.core_dump = cfg.core_dump;
    if let Some(secs) = cfg.hang_timeout {
        forward::arm_hang_timer(secs);
    }
    if let Some(t) = cfg.test_timeout {
        tracer.test_watch = Some(test_timeout::Watch::new(t));
        test_timeout::start_ticker();
    }
    let exit = tracer.run();
    test_timeout::stop_ticker();
    let exec_seen = tracer.main_exec_seen();
    drop(tracer);
    forward::set_target(0);
    spawn::restore_terminal(&spawned);
    if !exec_seen {
        if let Some(errno) = spawn::read_exec_error(&spawned.exec_error) {
            let name = cfg.command[0].to_string_lossy();
            let not_found = errno == libc::ENOENT || errno == libc::ENOTDIR;
            if not_found {
                console::say(&format!("{name}: command not found"));
                return Exit::Code(127);
            }
            let why = nix::errno::Errno::from_raw(errno).desc();
            console::say(&format!("{name}: cannot execute: {why}"));
            return Exit::Code(126);
        }
    }
    emitter.finish();
    exit
}
