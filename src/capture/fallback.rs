//! The report made when building the full one failed (a panic in a stage): the process and
//! the signal, which the supervisor already holds, and the reason.

use super::{clock, signal_report, Event};
use crate::process::Snapshot;
use crate::report::model::{failure_note, Crash, ProcessInfo};

/// A minimal report for `snap`, saying that making the full one failed with `why`.
pub fn fallback(snap: &Snapshot<'_>, event: Event, why: &str) -> Crash {
    let process = ProcessInfo {
        pid: snap.pid,
        exe: snap.exe.clone(),
        cmdline: snap.cmdline.clone(),
        ancestry: event.ancestry,
        ..Default::default()
    };
    let mut c = Crash::minimal(
        event.kind,
        clock::now_rfc3339(),
        process,
        signal_report(snap),
        snap.crashed_tid,
        failure_note(why),
    );
    c.also_faulting = event.also_faulting;
    c
}
