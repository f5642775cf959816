//! `--core`: at a crash, after the report is on disk and before the signal is delivered, a
//! core file of the process (still stopped) is written next to the report, so it can be opened
//! in gdb later (or by `crashcatch core`). The crashed thread is written as it was at its first
//! fault: a handler that re-raises (faulthandler, under pytest) dies of its own `tgkill`, and
//! the core must show the fault, not the re-raise.
//!
//! The memory is read on a watched thread (process/blocking.rs): userfaultfd areas are left out
//! up front, and a read that does not return makes the core be given up on (its file removed),
//! never the supervisor wait.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::capture::worker::STUCK_AFTER;
use crate::process::blocking::{self, Fence};
use crate::process::core::write::{write_core, CoreInput, Written};
use crate::process::live::{self, LiveProcess};
use crate::process::{ProcessView, Registers, SignalInfo, ThreadInfo};

use super::ptrace;

/// The longest a core may take to write (a slow disk, gigabytes of memory).
const CORE_TIME: Duration = Duration::from_secs(120);

/// The crashed thread at its fault: the registers and siginfo the core shows for it.
#[derive(Debug, Clone, Copy)]
pub struct Fault {
    pub tid: i32,
    pub regs: Option<Registers>,
    pub info: SignalInfo,
}

impl Fault {
    /// Thread `tid`, stopped at the signal described by `info`, as it is now.
    pub fn at(tid: i32, info: SignalInfo) -> Fault {
        Fault { tid, regs: ptrace::regs(tid).ok(), info }
    }
}

/// Writes the core of process `tgid` (threads `tids` stopped; `fault` the crashed one) as
/// `path`; a file that exists is never overwritten.
pub fn write(path: &Path, tgid: i32, fault: &Fault, tids: &[i32], max_bytes: u64) -> Result<Written, String> {
    let threads: Vec<ThreadInfo> = tids
        .iter()
        .filter_map(|&t| {
            let regs = if t == fault.tid { fault.regs.or_else(|| ptrace::regs(t).ok()) } else { ptrace::regs(t).ok() };
            Some(ThreadInfo { tid: t, name: None, regs: Some(regs?), note: None })
        })
        .collect();
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    // A userfaultfd area is never read: the process would have to serve the fault.
    let mut fence = Fence::default();
    for (s, e) in live::userfaultfd_areas(tgid) {
        fence.memory_range(s, e);
    }
    let (tid, info) = (fault.tid, fault.info);
    let work = move || {
        let process = LiveProcess::new(tgid);
        let snap = process.snapshot(&process.memory, tid, info, threads);
        let dirty_starts = live::dirty_file_mappings(tgid);
        let dirty = |m: &crate::process::Mapping| dirty_starts.contains(&m.start);
        let auxv = process.view.auxv();
        write_core(&CoreInput { snap: &snap, auxv: &auxv, dirty: &dirty }, max_bytes, file)
    };
    let fence = Arc::new(RwLock::new(fence));
    let result = blocking::watched("cc-core", fence, work, STUCK_AFTER, Instant::now() + CORE_TIME, &|| false);
    match result {
        Ok(Ok(w)) => Ok(w),
        Ok(Err(e)) => {
            let _ = std::fs::remove_file(path);
            Err(format!("writing {}: {e}", path.display()))
        }
        Err(why) => {
            let _ = std::fs::remove_file(path);
            Err(format!("no core written: {why}"))
        }
    }
}

/// Where the core goes: next to the report (its name with `.core`), else in the current
/// folder as `crash-<pid>.core`.
pub fn path_for(report_files: &[PathBuf], pid: i32) -> PathBuf {
    match report_files.first() {
        Some(json) => json.with_extension("core"),
        None => PathBuf::from(format!("crash-{pid}.core")),
    }
}
