//! What the stacks mean: the culprit frame, the Python call site, the classification and the
//! diagnosis. Everything here reads a finished set of threads and the stopped process; what
//! counts as a system library or as the user's code is the model's (report::model::frames).

pub mod abort_message;
pub mod classify;
pub mod diagnose;
pub mod fingerprint;

use crate::modules::ModuleSet;
use crate::process::{MemoryExt, Snapshot};
use crate::report::model::{Classification, Culprit, NativeFrame, PythonFrame, Thread};

/// The culprit: the crashed thread's innermost native frame, and the first frame outside the
/// system libraries when it faulted inside one.
pub fn culprit(crashed: Option<&Thread>) -> Option<Culprit> {
    let natives: Vec<&NativeFrame> = crashed.map(|t| t.native_frames().collect()).unwrap_or_default();
    let top = natives.first()?;
    let first_outside_system = if top.in_system_library() {
        natives.iter().skip(1).find(|f| f.module.is_some() && !f.in_system_library()).map(|f| (*f).clone())
    } else {
        None
    };
    Some(Culprit { frame: (*top).clone(), first_outside_system })
}

/// The innermost Python frame of the crashed thread.
pub fn python_call_site(crashed: Option<&Thread>) -> Option<PythonFrame> {
    crashed.and_then(|t| t.python_frames().next().cloned())
}

/// The innermost frame of the user's own code, when it is not the call site itself.
pub fn python_user_frame(crashed: Option<&Thread>, call_site: Option<&PythonFrame>) -> Option<PythonFrame> {
    crashed.and_then(|t| t.user_frame()).filter(|u| Some(*u) != call_site).cloned()
}

/// What the classification needs of the process's memory, read in the read phase: the
/// instruction at the crashed pc (a trap such as `ud2`) and glibc's abort message.
#[derive(Debug, Clone, Default)]
pub struct MemoryFacts {
    pub trap: Option<&'static str>,
    pub abort_message: Option<String>,
}

/// Reads the [`MemoryFacts`] of a stopped process.
pub fn memory_facts(snap: &Snapshot<'_>, modules: &ModuleSet) -> MemoryFacts {
    let regs = snap.thread(snap.crashed_tid).and_then(|t| t.regs.as_ref());
    let trap = regs.and_then(|r| {
        let spec = r.spec();
        let mut b = [0u8; 8];
        let b = &mut b[..spec.trap_len()];
        snap.memory.read_exact(r.pc(), b).ok().and_then(|_| spec.trap_name(b))
    });
    let abort_message =
        if snap.signal.signo == libc::SIGABRT { abort_message::abort_message(snap, modules) } else { None };
    MemoryFacts { trap, abort_message }
}

/// The classification, from the signal, the crashed thread's registers, the maps, its
/// innermost functions and what was read of its memory.
pub fn classification(snap: &Snapshot<'_>, facts: &MemoryFacts, crashed: Option<&Thread>) -> Option<Classification> {
    let regs = snap.thread(snap.crashed_tid).and_then(|t| t.regs.as_ref());
    classify::classify(&classify::Facts {
        signal: &snap.signal,
        regs,
        maps: &snap.maps,
        abort_message: facts.abort_message.clone(),
        top_functions: crashed
            .map(|t| t.native_frames().filter_map(|f| f.function.clone()).take(12).collect())
            .unwrap_or_default(),
        trap: facts.trap,
    })
}
