//! The report made when building the full one failed (a panic in a stage, or a capture the
//! supervisor had to give up on): the process and the signal, which the supervisor already
//! holds, and the reason.

use super::{clock, signal_info_report, Circumstances};
use crate::process::{SignalInfo, Snapshot};
use crate::report::model::{failure_note, Crash, ProcessInfo};

/// A minimal report for `snap`, saying that making the full one failed with `why`.
pub fn fallback(snap: &Snapshot<'_>, event: Circumstances, why: &str) -> Crash {
    minimal(snap.pid, snap.exe.clone(), snap.cmdline.clone(), &snap.signal, snap.crashed_tid, event, why)
}

/// A minimal report from what the supervisor knows without reading the process.
pub fn minimal(
    pid: i32,
    exe: Option<String>,
    cmdline: Vec<String>,
    signal: &SignalInfo,
    crashed_tid: i32,
    event: Circumstances,
    why: &str,
) -> Crash {
    let process = ProcessInfo { pid, exe, cmdline, ancestry: event.ancestry, ..Default::default() };
    let mut c = Crash::minimal(
        event.kind,
        clock::now_rfc3339(),
        process,
        signal_info_report(signal),
        crashed_tid,
        failure_note(why),
    );
    c.also_faulting = event.also_faulting;
    c.test_timeout = event.test_timeout;
    c
}
