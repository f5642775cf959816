//! A read-only view of a stopped process: memory, maps, threads and their registers.
//!
//! The supervisor stops a process and fills a [`Snapshot`], or `crashcatch core` reads one from
//! a core file; everything after it (unwind, symbolize, python, report) only reads the
//! snapshot, through two traits with a live, a core and a synthetic implementation each:
//! [`Memory`] and [`ProcessView`]. Tests build snapshots over [`ImageMemory`] and
//! `SyntheticView` to run the same code without a process.

#[allow(missing_docs)] // The read phase's (issue 22): documented after its rework (issue 27).
pub mod blocking;
#[allow(missing_docs)] // The read phase's (issue 22): documented after its rework (issue 27).
pub mod copy;
pub mod core;
pub(crate) mod elfid;
pub mod files;
#[allow(missing_docs)] // The read phase's (issue 22): documented after its rework (issue 27).
pub mod live;
pub mod maps;
#[allow(missing_docs)] // The read phase's (issue 22): documented after its rework (issue 27).
pub mod memory;
pub(crate) mod quiet_thread;
pub(crate) mod rights;
pub(crate) mod siginfo;
pub(crate) mod signals;
pub mod tree;
pub mod view;

use std::path::PathBuf;

pub use maps::Mapping;
pub use memory::{CachedMemory, ImageMemory, Memory, MemoryExt, ReadError};
pub use rights::TargetFiles;
pub use view::ProcessView;
#[cfg(any(test, feature = "synthetic"))]
pub use view::SyntheticView;

/// Registers of one thread, per architecture (see crate::arch).
pub use crate::arch::Registers;

/// One thread of the stopped process.
#[derive(Debug, Clone, Default)]
pub struct ThreadInfo {
    /// Its kernel thread id.
    pub tid: i32,
    /// /proc/PID/task/TID/comm
    pub name: Option<String>,
    /// None when the registers could not be read; `note` says why.
    pub regs: Option<Registers>,
    /// Why its registers could not be read.
    pub note: Option<String>,
}

/// What the kernel said about the fatal signal (from PTRACE_GETSIGINFO).
#[derive(Debug, Clone, Copy, Default)]
pub struct SignalInfo {
    /// `si_signo`.
    pub signo: i32,
    /// `si_code`.
    pub code: i32,
    /// si_addr for SIGSEGV/SIGBUS/SIGILL/SIGFPE, the syscall's address for SIGSYS.
    pub addr: Option<u64>,
    /// si_pid for signals sent by a process (kill, tgkill, raise).
    pub sender_pid: Option<i32>,
    /// SIGSYS: the syscall number and audit arch.
    pub syscall: Option<i32>,
}

impl SignalInfo {
    /// The kernel raised it for a fault (positive si_code other than SI_KERNEL), rather than a
    /// process sending it (kill, tgkill, raise, abort).
    pub(crate) fn is_fault(&self) -> bool {
        is_fault_code(self.code)
    }
}

/// True for an si_code the kernel sets for a fault.
pub(crate) fn is_fault_code(code: i32) -> bool {
    code > 0 && code != 0x80
}

/// A stopped process, as the stages after the supervisor see it.
pub struct Snapshot<'m> {
    /// Its pid.
    pub pid: i32,
    /// Thread that received the fatal signal.
    pub crashed_tid: i32,
    /// The fatal signal.
    pub signal: SignalInfo,
    /// The executable (/proc/PID/exe).
    pub exe: Option<String>,
    /// Its arguments.
    pub cmdline: Vec<String>,
    /// Its memory mappings.
    pub maps: Vec<Mapping>,
    /// Its threads.
    pub threads: Vec<ThreadInfo>,
    /// Its memory.
    pub memory: &'m dyn Memory,
    /// Where the process's files, working folder and starting environment are seen from here
    /// (live: /proc/PID/root and friends; core: the sysroot and the core's notes).
    pub view: &'m dyn ProcessView,
    /// Opens the process's own files (source lines, debug files it names) as the process
    /// would: inside its root, with its rights, regular files only.
    pub files: TargetFiles,
}

impl Snapshot<'_> {
    /// The path under which this process's file `path` can be opened from here.
    pub(crate) fn host_path(&self, path: &str) -> PathBuf {
        self.view.host_path(path)
    }
    /// The process's working folder as seen from here, when known.
    pub fn cwd(&self) -> Option<PathBuf> {
        self.view.cwd()
    }
    /// The process's working folder as it names it itself, when known.
    pub fn working_dir(&self) -> Option<String> {
        self.view.working_dir()
    }
    /// The thread `tid`.
    pub fn thread(&self, tid: i32) -> Option<&ThreadInfo> {
        self.threads.iter().find(|t| t.tid == tid)
    }
}
