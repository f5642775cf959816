//! `--core`: at a crash, after the report is on disk and before the signal is delivered, a
//! core file of the process (still stopped) is written next to the report, from the same live
//! view the report was read from, so it can be opened in gdb later (or by `crashcatch core`).

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::process::core::write::{write_core, Source, Written};
use crate::process::{live, ProcessView, SignalInfo, Snapshot, ThreadInfo};

use super::ptrace;

/// Writes the core of process `tgid` (threads `tids` stopped, `tid` the crashed one) as
/// `path`; a file that exists is never overwritten.
pub fn write(
    path: &Path,
    tgid: i32,
    tid: i32,
    signal: SignalInfo,
    tids: &[i32],
    max_bytes: u64,
) -> Result<Written, String> {
    let threads: Vec<ThreadInfo> = tids
        .iter()
        .filter_map(|&t| Some(ThreadInfo { tid: t, name: None, regs: Some(ptrace::regs(t).ok()?), note: None }))
        .collect();
    let memory = live::LiveMemory::new(tgid);
    let view = live::LiveView { pid: tgid };
    let snap = Snapshot {
        pid: tgid,
        crashed_tid: tid,
        signal,
        exe: live::exe(tgid),
        cmdline: live::cmdline(tgid),
        maps: live::maps(tgid),
        threads,
        memory: &memory,
        view: &view,
    };
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    let dirty_starts = live::dirty_file_mappings(tgid);
    let dirty = |m: &crate::process::Mapping| dirty_starts.contains(&m.start);
    let auxv = view.auxv();
    write_core(&Source { snap: &snap, auxv: &auxv, dirty: &dirty }, max_bytes, file).map_err(|e| {
        let _ = std::fs::remove_file(path);
        format!("writing {}: {e}", path.display())
    })
}

/// Where the core goes: next to the report (its name with `.core`), else in the current
/// folder as `crash-<pid>.core`.
pub fn path_for(report_files: &[PathBuf], pid: i32) -> PathBuf {
    match report_files.first() {
        Some(json) => json.with_extension("core"),
        None => PathBuf::from(format!("crash-{pid}.core")),
    }
}
