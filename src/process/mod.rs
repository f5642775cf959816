//! A read-only view of a stopped process: memory, maps, threads and their registers.
//!
//! The supervisor stops a process and fills a [`Snapshot`], or `crashcatch core` reads one from
//! a core file; everything after it (unwind, symbolize, python, report) only reads the
//! snapshot, through two traits with a live, a core and a synthetic implementation each:
//! [`Memory`] and [`ProcessView`]. Tests build snapshots over [`ImageMemory`] and
//! [`SyntheticView`] to run the same code without a process.

pub mod core;
pub mod elfid;
pub mod live;
pub mod maps;
pub mod memory;
pub mod siginfo;
pub mod signals;
pub mod view;

use std::path::PathBuf;

pub use maps::Mapping;
pub use memory::{CachedMemory, ImageMemory, Memory, MemoryExt, ReadError};
pub use view::{ProcessView, SyntheticView};

/// x86_64 general-purpose registers of one thread.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Registers {
    pub rax: u64,
    pub rbx: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub rbp: u64,
    pub rsp: u64,
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
    pub rip: u64,
    pub eflags: u64,
    pub fs_base: u64,
    pub gs_base: u64,
    pub orig_rax: u64,
}

impl Registers {
    /// The register with this DWARF number (x86_64 psABI numbering), if it is a GPR or the RA.
    pub fn get_dwarf(&self, n: u16) -> Option<u64> {
        Some(match n {
            0 => self.rax,
            1 => self.rdx,
            2 => self.rcx,
            3 => self.rbx,
            4 => self.rsi,
            5 => self.rdi,
            6 => self.rbp,
            7 => self.rsp,
            8 => self.r8,
            9 => self.r9,
            10 => self.r10,
            11 => self.r11,
            12 => self.r12,
            13 => self.r13,
            14 => self.r14,
            15 => self.r15,
            16 => self.rip,
            _ => return None,
        })
    }
}

/// One thread of the stopped process.
#[derive(Debug, Clone, Default)]
pub struct ThreadInfo {
    pub tid: i32,
    /// /proc/PID/task/TID/comm
    pub name: Option<String>,
    /// None when the registers could not be read; `note` says why.
    pub regs: Option<Registers>,
    pub note: Option<String>,
}

/// What the kernel said about the fatal signal (from PTRACE_GETSIGINFO).
#[derive(Debug, Clone, Copy, Default)]
pub struct SignalInfo {
    pub signo: i32,
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
    pub fn is_fault(&self) -> bool {
        is_fault_code(self.code)
    }
}

/// True for an si_code the kernel sets for a fault.
pub fn is_fault_code(code: i32) -> bool {
    code > 0 && code != 0x80
}

/// A stopped process, as the stages after the supervisor see it.
pub struct Snapshot<'m> {
    pub pid: i32,
    /// Thread that received the fatal signal.
    pub crashed_tid: i32,
    pub signal: SignalInfo,
    pub exe: Option<String>,
    pub cmdline: Vec<String>,
    pub maps: Vec<Mapping>,
    pub threads: Vec<ThreadInfo>,
    pub memory: &'m dyn Memory,
    /// Where the process's files, working folder and starting environment are seen from here
    /// (live: /proc/PID/root and friends; core: the sysroot and the core's notes).
    pub view: &'m dyn ProcessView,
}

impl Snapshot<'_> {
    /// The path under which this process's file `path` can be opened from here.
    pub fn host_path(&self, path: &str) -> PathBuf {
        self.view.host_path(path)
    }
    /// The process's working folder as seen from here, when known.
    pub fn cwd(&self) -> Option<PathBuf> {
        self.view.cwd()
    }
    pub fn thread(&self, tid: i32) -> Option<&ThreadInfo> {
        self.threads.iter().find(|t| t.tid == tid)
    }
}
