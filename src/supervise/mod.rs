//! The supervisor: the only module that calls ptrace, waitpid, kill or fork. It starts (or, in
//! later modes, seizes) the process, runs the event loop, decides per fatal signal whether the
//! process will die, has a report made and written, then lets the signal act.

pub mod attach;
pub mod forward;
pub mod ptrace;
pub mod spawn;
pub mod tracer;

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

use nix::sys::ptrace::Options;

use crate::capture;
use crate::report::{self, model::Crash};

pub use tracer::Exit;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct OutputConfig {
    pub dir: Option<PathBuf>,
    pub format: Format,
    pub quiet: bool,
    /// Write (or merge) a JUnit XML file with a testcase per crash.
    pub junit: Option<PathBuf>,
    /// Print GitHub Actions `::error` annotations (GITHUB_ACTIONS=true).
    pub github: bool,
}

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
    /// Become a child subreaper (PID 1 always reaps orphans).
    pub subreaper: bool,
}

/// Writes reports (files first, then stderr) and keeps count.
pub struct Emitter {
    cfg: OutputConfig,
    pub reports: Vec<(i32, String, Vec<PathBuf>)>,
    crashes: Vec<Crash>,
}

impl Emitter {
    pub fn new(cfg: OutputConfig) -> Self {
        Emitter { cfg, reports: Vec::new(), crashes: Vec::new() }
    }

    fn write_junit(&self) {
        if let Some(j) = &self.cfg.junit {
            if let Err(e) = report::ci::write_junit(j, &self.crashes) {
                eprintln!("crashcatch: could not write {}: {e}", j.display());
            }
        }
    }

    /// The end of the run: the JUnit file once more (pytest may have rewritten it since), and
    /// one summary line when anything crashed.
    pub fn finish(&mut self) {
        let crashes: Vec<&Crash> = self.crashes.iter().filter(|c| c.kind == "crash").collect();
        if crashes.is_empty() {
            return;
        }
        self.write_junit();
        if self.cfg.format == Format::Json {
            return; // stderr holds only the JSON reports
        }
        let files: Vec<String> = self
            .reports
            .iter()
            .flat_map(|r| r.2.iter().filter(|p| p.extension().is_some_and(|e| e == "txt")))
            .map(|p| p.display().to_string())
            .collect();
        let procs: Vec<String> = crashes
            .iter()
            .map(|c| match &c.process.test {
                Some(t) => format!("pid {} {} ({})", c.process.pid, c.signal.name, t),
                None => format!("pid {} {}", c.process.pid, c.signal.name),
            })
            .collect();
        let n = crashes.len();
        eprintln!(
            "crashcatch: {n} crash{}: {}{}",
            if n == 1 { "" } else { "es" },
            procs.join(", "),
            if files.is_empty() { String::new() } else { format!("; reports: {}", files.join(" ")) }
        );
    }

    pub fn emit(&mut self, mut crash: Crash) {
        let mut files = Vec::new();
        if let Some(dir) = &self.cfg.dir {
            match report::write::write_report(&mut crash, dir) {
                Ok(f) => files = f,
                Err(e) => eprintln!("crashcatch: could not write the report to {}: {e}", dir.display()),
            }
        }
        let out = match self.cfg.format {
            Format::Text => report::text::render(&crash, report::text::Style::detect_stderr()),
            Format::Json => report::json::render(&crash),
        };
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(out.as_bytes());
        if self.cfg.github && crash.kind == "crash" {
            let workspace = std::env::var_os("GITHUB_WORKSPACE").filter(|w| !w.is_empty()).map(PathBuf::from);
            let _ = writeln!(err, "{}", report::ci::github_annotation(&crash, workspace.as_deref()));
        }
        let _ = err.flush();
        drop(err);
        self.reports.push((crash.process.pid, crash.signal.name.clone(), files));
        if crash.kind == "crash" {
            self.crashes.push(crash);
            self.write_junit();
        }
    }

    /// One line on stderr, unless quiet.
    pub fn note(&mut self, msg: &str) {
        if !self.cfg.quiet {
            eprintln!("crashcatch: {msg}");
        }
    }
}

/// What the kernel's ptrace policy allows, for error messages.
pub fn permission_hint() -> String {
    match std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope").ok().map(|s| s.trim().to_string()) {
        Some(s) if s == "3" => "kernel.yama.ptrace_scope is 3: ptrace is disabled on this machine until reboot".into(),
        Some(s) if s == "2" => {
            "kernel.yama.ptrace_scope is 2: only a process with CAP_SYS_PTRACE (root) may trace".into()
        }
        Some(s) if s == "1" => {
            "kernel.yama.ptrace_scope is 1: only descendants (or with CAP_SYS_PTRACE) may be traced".into()
        }
        _ => "is ptrace blocked here (a container's seccomp profile, or a missing CAP_SYS_PTRACE)?".into(),
    }
}

/// Ends crashcatch the way the traced command ended: the same exit code, or death by the same
/// signal (without a second core dump from crashcatch itself).
pub fn exit_like(exit: Exit) -> ! {
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
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
    forward::install(cfg.signal_group);
    // As PID 1 (a container's entrypoint) or a subreaper, orphans are re-parented to us; the
    // event loop's waitpid(-1) reaps them, so zombies never pile up.
    if cfg.subreaper && std::process::id() != 1 {
        // SAFETY: prctl with integer arguments.
        if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
            eprintln!("crashcatch: --subreaper: {}", nix::errno::Errno::last());
        }
    }
    let spawned = match spawn::spawn(&cfg.command, options, cfg.signal_group) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("crashcatch: {e}");
            return Exit::Code(125);
        }
    };
    forward::set_target(spawned.pid);
    let mut emitter = Emitter::new(cfg.output.clone());
    let mut tracer = tracer::Tracer::new(spawned.pid, &mut emitter, cfg.capture.clone());
    tracer.hang_action = cfg.hang_action;
    if let Some(secs) = cfg.hang_timeout {
        forward::arm_hang_timer(secs);
    }
    let exit = tracer.run();
    let exec_seen = tracer.main_exec_seen();
    drop(tracer);
    forward::set_target(0);
    spawn::restore_terminal(&spawned);
    if !exec_seen {
        if let Some(errno) = spawn::read_exec_error(&spawned.exec_error) {
            let name = cfg.command[0].to_string_lossy();
            let not_found = errno == libc::ENOENT || errno == libc::ENOTDIR;
            if not_found {
                eprintln!("crashcatch: {name}: command not found");
                return Exit::Code(127);
            }
            let why = nix::errno::Errno::from_raw(errno).desc();
            eprintln!("crashcatch: {name}: cannot execute: {why}");
            return Exit::Code(126);
        }
    }
    emitter.finish();
    exit
}
