//! `--core`: at a crash, after the report is on disk and before the signal is delivered, a
//! core file of the process (still stopped) is written next to the report, so it can be opened
//! in gdb later (or by `crashcatch core`). The crashed thread is written as it was at its first
//! fault: a handler that re-raises (faulthandler, under pytest) dies of its own `tgkill`, and
//! the core must show the fault, not the re-raise.
//!
//! The memory is read on a watched thread (process/blocking.rs): userfaultfd areas are left out
//! up front, and a read that does not return makes the core be given up on (its file removed),
//! never the supervisor wait.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::capture::worker::STUCK_AFTER;
use crate::door::{FileMode, OutDir};
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

/// Writes the core of process `tgid` (threads `tids` stopped; `fault` the crashed one) as the
/// new file `name` in `dir` (through the output door: never over a file or through a link).
pub fn write(
    dir: &OutDir,
    name: &str,
    tgid: i32,
    fault: &Fault,
    tids: &[i32],
    max_bytes: u64,
) -> Result<Written, String> {
    let path = dir.path_of(name);
    let threads: Vec<ThreadInfo> = tids
        .iter()
        .filter_map(|&t| {
            let regs = if t == fault.tid { fault.regs.or_else(|| ptrace::regs(t).ok()) } else { ptrace::regs(t).ok() };
            Some(ThreadInfo { tid: t, name: None, regs: Some(regs?), note: None })
        })
        .collect();
    let file = dir.create_new(name, FileMode::PRIVATE).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
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
        let ids = crate::process::rights::Credentials::of(tgid).map_or((0, 0), |c| (c.fsuid, c.fsgid));
        write_core(&CoreInput { snap: &snap, auxv: &auxv, dirty: &dirty, ids }, max_bytes, file)
    };
    let fence = Arc::new(RwLock::new(fence));
    let result = blocking::watched("cc-core", fence, work, STUCK_AFTER, Instant::now() + CORE_TIME, &|| false);
    match result {
        Ok(Ok(w)) => Ok(w),
        Ok(Err(e)) => {
            let _ = dir.remove(name);
            Err(format!("writing {}: {e}", path.display()))
        }
        Err(why) => {
            let _ = dir.remove(name);
            Err(format!("no core written: {why}"))
        }
    }
}

/// The core's file name: the report's with `.core` (in the report folder), else
/// `crash-<pid>.core` (in the current folder).
pub fn name_for(report_files: &[PathBuf], pid: i32) -> String {
    match report_files.first().and_then(|json| json.file_stem()) {
        Some(stem) => format!("{}.core", stem.to_string_lossy()),
        None => format!("crash-{pid}.core"),
    }
}
