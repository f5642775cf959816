//! What the stacks mean: the culprit frame, the Python call site, the classification and the
//! diagnosis. Everything here reads a finished set of threads and the stopped process; what
//! counts as a system library or as the user's code is the model's (report::model::frames).

pub mod abort_message;
pub mod classify;
pub mod diagnose;
pub mod fingerprint;

use crate::modules::ModuleSet;
use crate::process::{MemoryExt, Snapshot};
use crate::report::model::{
    is_python_runtime, Classification, Culprit, Frame, NativeFrame, PythonFrame, Suspect, Thread,
};

/// The culprit: the crashed thread's innermost native frame, the first frame outside the
/// system libraries when it faulted inside one, and the suspect (see [`suspect_frames`]).
pub fn culprit(crashed: Option<&Thread>) -> Option<Culprit> {
    let natives: Vec<&NativeFrame> = crashed.map(|t| t.native_frames().collect()).unwrap_or_default();
    let top = natives.first()?;
    let first_outside_system = if top.in_system_library() {
        natives.iter().skip(1).find(|f| f.module.is_some() && !f.in_system_library()).map(|f| (*f).clone())
    } else {
        None
    };
    let suspect = crashed
        .and_then(|t| suspect_frames(t).1)
        .and_then(|f| Some(Suspect { owner: owner(f.module.as_deref()?), frame: f.clone() }));
    Some(Culprit { frame: (*top).clone(), first_outside_system, suspect })
}

/// The native frames whose bug a crash most likely is: the faulting frame, and when that is in
/// a system library or the interpreter, the first frame outside both (strlen's caller, the
/// extension that passed NULL into the interpreter's dict code), looked for only up to the
/// first Python frame or eval loop (beyond that the stack is the interpreter's and the test
/// runner's, not the bug's). The fingerprint hashes these frames; the header names the second.
pub fn suspect_frames(thread: &Thread) -> (Option<&NativeFrame>, Option<&NativeFrame>) {
    let mut natives = Vec::new();
    for f in &thread.frames {
        match f {
            Frame::Python(_) => break,
            Frame::Native(n) if natives.is_empty() => natives.push(n),
            Frame::Native(n) if is_eval_loop(n) => break,
            Frame::Native(n) => natives.push(n),
        }
    }
    let Some(top) = natives.first().copied() else { return (None, None) };
    let outside = if in_runtime(top) {
        natives.iter().skip(1).find(|f| f.module.is_some() && !in_runtime(f)).copied()
    } else {
        None
    };
    (Some(top), outside)
}

/// In a system library or the interpreter itself.
fn in_runtime(f: &NativeFrame) -> bool {
    f.in_system_library() || f.module.as_deref().is_some_and(is_python_runtime)
}

fn is_eval_loop(f: &NativeFrame) -> bool {
    f.function
        .as_deref()
        .is_some_and(|n| n.starts_with("_PyEval_EvalFrameDefault") || n.starts_with("PyEval_EvalFrameEx"))
}

/// Whose code a module is, for people: the installed package it belongs to
/// (`.../site-packages/numpy/core/_multiarray_umath.cpython-311-x86_64-linux-gnu.so` → `numpy`,
/// `.../site-packages/numpy.libs/libopenblas64_p-r0-5007b62f.3.23.dev.so` → `numpy`), else the
/// library's name without its version (`/usr/lib/x86_64-linux-gnu/libz.so.1` → `libz`).
pub fn owner(path: &str) -> String {
    for marker in ["/site-packages/", "/dist-packages/"] {
        if let Some(i) = path.rfind(marker) {
            let rest = &path[i + marker.len()..];
            if let Some((top, _)) = rest.split_once('/') {
                let top = top.strip_suffix(".libs").unwrap_or(top);
                return top.to_string();
            }
        }
    }
    let name = path.rsplit('/').next().unwrap_or(path);
    let stem = name.split(".so").next().unwrap_or(name);
    let stem = stem.split(".cpython-").next().unwrap_or(stem);
    if stem.is_empty() {
        name.to_string()
    } else {
        stem.to_string()
    }
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
